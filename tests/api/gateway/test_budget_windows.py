"""Budget windows in admin requests and responses: every window shows spend and reset_at; bad input is a 400."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error_body, new_key


def _next_hour_and_day(now: datetime) -> tuple[str, str]:
    hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return hour.isoformat().replace("+00:00", "Z"), day.isoformat().replace("+00:00", "Z")


async def test_key_windows_each_show_spend_and_reset_at(admin: httpx.AsyncClient) -> None:
    """Every response that shows a window shows its current spend and the end of its current period (UTC)."""
    before = datetime.now(UTC)
    created = await new_key(
        admin, max_budget=1, budget_duration="1h", budget_limits=[{"budget_duration": "1d", "max_budget": 5}]
    )
    after = datetime.now(UTC)
    resets = {_next_hour_and_day(before), _next_hour_and_day(after)}
    info_response = await admin.get("/key/info", params={"key": created["token"]})
    for shown in (created, info_response.json()["info"]):
        assert shown["max_budget"] == 1
        assert shown["budget_duration"] == "1h"
        assert shown["spend"] == 0
        assert shown["lifetime_spend"] == 0
        (day_window,) = shown["budget_limits"]
        assert day_window["budget_duration"] == "1d"
        assert day_window["max_budget"] == 5
        assert day_window["spend"] == 0
        assert (shown["budget_reset_at"], day_window["reset_at"]) in resets


async def test_key_budget_limits_as_json_string_is_accepted(admin: httpx.AsyncClient) -> None:
    """Some clients send ``budget_limits`` as a JSON string of the list: it is parsed, not rejected."""
    limits = json.dumps([{"budget_duration": "1d", "max_budget": 2}, {"budget_duration": "1w", "max_budget": 7}])
    created = await new_key(admin, budget_limits=limits)
    shown = [(w["budget_duration"], w["max_budget"]) for w in created["budget_limits"]]
    assert shown == [("1d", 2), ("1w", 7)]
    assert all(w["spend"] == 0 and w["reset_at"] for w in created["budget_limits"])


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(
            {"max_budget": 1, "budget_duration": "24h", "budget_limits": [{"budget_duration": "1d", "max_budget": 2}]},
            id="primary-24h-with-1d",
        ),
        pytest.param(
            {
                "budget_limits": [
                    {"budget_duration": "24h", "max_budget": 1},
                    {"budget_duration": "1d", "max_budget": 2},
                ]
            },
            id="limits-24h-and-1d",
        ),
        pytest.param(
            {
                "budget_limits": [
                    {"budget_duration": "60m", "max_budget": 1},
                    {"budget_duration": "hourly", "max_budget": 2},
                ]
            },
            id="limits-60m-hourly",
        ),
    ],
)
async def test_key_duplicate_windows_are_400_naming_budget_limits(
    admin: httpx.AsyncClient, fields: dict[str, Any]
) -> None:
    """Two windows over the same periods (24h and 1d) could never differ: a 400, never two counters."""
    response = await admin.post("/key/generate", json=fields)
    error = assert_error_body(response, 400, "invalid_request_error")
    assert "budget_limits" in error["message"] or error["param"] == "budget_limits"
    assert "duplicate" in error["message"]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"max_budget": 1, "budget_duration": "0h"}, "budget_duration"),
        ({"max_budget": 1, "budget_duration": "1hr"}, "budget_duration"),
        ({"max_budget": 1, "budget_duration": "1.5h"}, "budget_duration"),
        ({"max_budget": 1, "budget_duration": ""}, "budget_duration"),
        ({"max_budget": 1, "budget_duration": "7h"}, "budget_duration"),
        ({"max_budget": -1}, "max_budget"),
        ({"max_budget": True}, "max_budget"),
        ({"max_budget": "ten"}, "max_budget"),
        ({"budget_duration": "1h"}, "budget_duration"),
        ({"budget_limits": [{"budget_duration": "1h"}]}, "budget_limits"),
        ({"budget_limits": [{"budget_duration": "1h", "max_budget": -2}]}, "budget_limits"),
        ({"budget_limits": [{"budget_duration": "1x", "max_budget": 2}]}, "budget_limits"),
        ({"budget_limits": [{"budget_duration": "1h", "max_budget": 2, "extra": 1}]}, "budget_limits"),
        ({"budget_limits": "not json"}, "budget_limits"),
        ({"budget_limits": '{"budget_duration": "1h"}'}, "budget_limits"),
        ({"budget_limits": "[1, 2]"}, "budget_limits"),
        ({"budget_limits": 42}, "budget_limits"),
        ({"budget_limits": [[]]}, "budget_limits"),
        ({"soft_budget": -1}, "soft_budget"),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else None,
)
async def test_key_invalid_budget_fields_are_400_with_a_message(
    admin: httpx.AsyncClient, fields: dict[str, Any], named: str
) -> None:
    """Malformed budgets are the client's error: a 400 naming the field (never a 5xx, never stored)."""
    generated = await admin.post("/key/generate", json=fields)
    error = assert_error_body(generated, 400, "invalid_request_error")
    assert named in error["message"] or named in str(error["param"]), error
    existing = await new_key(admin)
    updated = await admin.post("/key/update", json={"key": existing["token"], **fields})
    assert_error_body(updated, 400, "invalid_request_error")
    listed = await admin.get("/key/info", params={"key": existing["token"]})
    assert listed.json()["info"]["max_budget"] is None, "a rejected update must not be stored"


async def test_key_duration_grammar_error_shows_the_grammar(admin: httpx.AsyncClient) -> None:
    """The 400 for a bad duration teaches the grammar instead of just refusing."""
    response = await admin.post("/key/generate", json={"max_budget": 1, "budget_duration": "1hr"})
    error = assert_error_body(response, 400)
    assert "1hr" in error["message"]
    assert any(unit in error["message"] for unit in ("<positive int>", "mo", "hourly"))
