"""Seed 001: concurrent budget windows (``budget_limits``) on keys and teams: every window is enforced, the
request is refused by whichever fills first, and every view shows each window's spend and reset_at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.api.entities.helpers import (
    ONE_REQUEST,
    chat,
    clear_of_boundary,
    error_of,
    get,
    new_key,
    new_team,
    post,
    refused_by,
)
from tests.support.gateway import GatewayServer

TWO_REQUESTS = 2 * ONE_REQUEST


def _next_hour() -> str:
    now = datetime.now(UTC)
    return (now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def _next_midnight() -> str:
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return midnight.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("hourly", "daily", "refused_window"),
    [(ONE_REQUEST, TWO_REQUESTS * 10, "1h"), (TWO_REQUESTS * 10, ONE_REQUEST, "1d")],
    ids=["hour-fills-first", "day-fills-first"],
)
async def test_seed_001_team_with_hour_and_day_windows_blocks_on_whichever_fills_first(
    gateway: GatewayServer, admin: httpx.AsyncClient, hourly: float, daily: float, refused_window: str
) -> None:
    """A team with 1h and 1d windows refuses as soon as either is spent, naming that window and its reset."""
    await clear_of_boundary(86400 if refused_window == "1d" else 3600)
    windows = [{"budget_duration": "1h", "max_budget": hourly}, {"budget_duration": "1d", "max_budget": daily}]
    team = await new_team(admin, budget_limits=windows)
    key = await new_key(admin, team_id=team["team_id"])
    assert (await chat(gateway, key["key"])).status_code == 200
    refused = await chat(gateway, key["key"])
    assert refused_by(refused) == ("team", team["team_id"], refused_window)
    expected_reset = _next_hour() if refused_window == "1h" else _next_midnight()
    assert refused.json()["error"]["reset_at"] == expected_reset
    info = (await get(admin, "/team/info", team_id=team["team_id"]))["team_info"]
    assert [(w["budget_duration"], w["spend"], w["reset_at"]) for w in info["budget_limits"]] == [
        ("1h", ONE_REQUEST, _next_hour()),
        ("1d", ONE_REQUEST, _next_midnight()),
    ]


async def test_seed_001_key_and_team_windows_are_enforced_together(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A key's own windows and its team's windows all apply: the key's 1h window (2 requests) outlasts the team's
    1d window (1 request) and the team refuses; a second team key is refused by the same team window."""
    await clear_of_boundary(86400)
    team = await new_team(admin, budget_limits=[{"budget_duration": "1d", "max_budget": ONE_REQUEST}])
    key_windows = [{"budget_duration": "1h", "max_budget": TWO_REQUESTS}, {"budget_duration": "1w", "max_budget": 1}]
    key = await new_key(admin, team_id=team["team_id"], budget_limits=key_windows)
    other = await new_key(admin, team_id=team["team_id"])
    assert (await chat(gateway, key["key"])).status_code == 200
    assert refused_by(await chat(gateway, key["key"])) == ("team", team["team_id"], "1d")
    assert refused_by(await chat(gateway, other["key"])) == ("team", team["team_id"], "1d")
    info = (await get(admin, "/key/info", key=key["key"]))["info"]
    assert [(w["budget_duration"], w["max_budget"], w["spend"]) for w in info["budget_limits"]] == [
        ("1h", TWO_REQUESTS, ONE_REQUEST),
        ("1w", 1.0, ONE_REQUEST),
    ]
    assert all(isinstance(w["reset_at"], str) for w in info["budget_limits"])


async def test_seed_001_key_with_two_windows_blocks_on_the_smaller(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A key with an hourly window of one request and a monthly one of many is refused by the hourly one."""
    await clear_of_boundary(3600)
    windows = [{"budget_duration": "1h", "max_budget": ONE_REQUEST}, {"budget_duration": "1mo", "max_budget": 5}]
    key = await new_key(admin, budget_limits=windows)
    assert (await chat(gateway, key["key"])).status_code == 200
    assert refused_by(await chat(gateway, key["key"])) == ("key", key["token"], "1h")


async def test_seed_001_team_budget_limits_can_be_changed_and_sent_as_a_json_string(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """``/team/update`` replaces the windows; a JSON-string ``budget_limits`` is parsed like a list."""
    team = await new_team(admin, budget_limits='[{"budget_duration": "1h", "max_budget": 1}]')
    assert [w["budget_duration"] for w in team["budget_limits"]] == ["1h"]
    updated = await post(
        admin,
        "/team/update",
        {"team_id": team["team_id"], "budget_limits": [{"budget_duration": "daily", "max_budget": 3}]},
    )
    assert [(w["budget_duration"], w["max_budget"]) for w in updated["budget_limits"]] == [("1d", 3.0)]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {
                "budget_limits": [
                    {"budget_duration": "24h", "max_budget": 1},
                    {"budget_duration": "1d", "max_budget": 2},
                ]
            },
            "budget_limits",
        ),
        (
            {
                "max_budget": 1,
                "budget_duration": "1d",
                "budget_limits": [{"budget_duration": "daily", "max_budget": 2}],
            },
            "budget_limits",
        ),
        ({"budget_limits": [{"budget_duration": "1hr", "max_budget": 1}]}, "budget_limits[0].budget_duration"),
        ({"budget_limits": [{"budget_duration": "1h", "max_budget": -1}]}, "budget_limits.0.max_budget"),
        ({"budget_limits": "not json"}, "budget_limits"),
        ({"max_budget": 1, "budget_duration": "0h"}, "budget_duration"),
        ({"budget_duration": "1d"}, "budget_duration"),
        ({"max_budget": "lots"}, "max_budget"),
    ],
    ids=[
        "24h-and-1d",
        "primary-and-limit-same-period",
        "bad-grammar",
        "negative",
        "bad-json",
        "zero",
        "no-max",
        "string-amount",
    ],
)
@pytest.mark.parametrize("path", ["/team/new", "/key/generate", "/user/new", "/tag/new"])
async def test_seed_001_invalid_windows_are_400_naming_the_field(
    admin: httpx.AsyncClient, path: str, fields: dict[str, object], param: str
) -> None:
    """Duplicate periods, bad durations and bad amounts are refused with a 400 naming the field, on every
    entity type, and nothing is created."""
    body = {"name": "never-created", **fields} if path == "/tag/new" else fields
    error = error_of(await admin.post(path, json=body), 400)
    assert error["param"] is not None and error["param"].replace("[0]", ".0").startswith(param.replace("[0]", ".0"))
    if path == "/tag/new":
        error_of(await admin.get("/tag/info", params={"name": "never-created"}), 404)
