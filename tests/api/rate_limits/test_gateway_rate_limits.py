"""Rate limits through the real gateway: rpm, tpm and max_parallel_requests on keys, teams and shared budget
objects, refused with 429 ``rate_limit_exceeded`` and ``retry-after``, in the same atomic admission as budgets."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import httpx
import pytest

from tests.api.helpers import bearer_client, chat_body, key_info, marker, spend_logs
from tests.api.rate_limits.harness import (
    TOKENS_PER_REQUEST,
    ShiftedClock,
    chat,
    chats,
    create,
    new_key,
    rate_limit_error,
)
from tests.support.gateway import DRIP_MODEL, FLAT_MODEL, FLAT_OUTPUT_NANOS_PER_TOKEN, GatewayServer

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


async def test_rpm_limit_refuses_the_request_over_the_limit_until_the_next_minute(
    gateway: GatewayServer, admin: httpx.AsyncClient, clock: ShiftedClock
) -> None:
    """rpm_limit 5: the 6th request of the minute is a 429 rate_limit_exceeded naming the key and the limit, with
    retry-after = seconds to the minute's end; the first request of the next minute is admitted."""
    minute_s = clock.start_of_minute() - 1
    key = await new_key(admin, rpm_limit=5)
    assert await chats(gateway, key["key"], 5) == [200] * 5
    async with bearer_client(gateway, key["key"]) as client:
        # retry-after is counted when the refusal is made, somewhere between these two readings of the clock
        # (far apart on a loaded machine): bound it by both, not by a reading taken after the answer.
        until_reset_before_s = minute_s + 60 - clock.now_s()
        refused = await chat(client)
        until_reset_after_s = minute_s + 60 - clock.now_s()
    error = rate_limit_error(refused)
    pattern = (
        rf"Rate limit exceeded! Key={re.escape(key['key_alias'])} rpm_limit=5 Current: 5 requests in the minute "
        rf"starting ({ISO}), Resets at: ({ISO})"
    )
    match = re.fullmatch(pattern, error["message"])
    assert match, error["message"]
    assert error["limit_type"] == "rpm_limit" and error["limit"] == 5 and error["current"] == 5
    assert (error["entity"], error["entity_id"]) == ("key", key["token"])
    assert error["reset_at"] == match.group(2)
    retry_after_s = int(refused.headers["retry-after"])
    assert max(1, math.floor(until_reset_after_s)) <= retry_after_s <= math.ceil(until_reset_before_s) + 1
    clock.start_of_minute()
    assert await chats(gateway, key["key"], 1) == [200]


async def test_rpm_limit_counts_every_request_also_upstream_errors(
    gateway: GatewayServer, admin: httpx.AsyncClient, clock: ShiftedClock
) -> None:
    """A request the upstream fails still counts against rpm_limit (it was admitted and forwarded)."""
    clock.start_of_minute()
    key = await new_key(admin, rpm_limit=2)
    async with bearer_client(gateway, key["key"]) as client:
        failed = await client.post("/v1/chat/completions", json=chat_body("x", "gpt-upstream-500", max_tokens=5))
        assert failed.status_code == 500
        assert (await chat(client)).status_code == 200
        rate_limit_error(await chat(client))


async def test_concurrent_requests_against_rpm_limit_serve_exactly_the_limit(
    gateway: GatewayServer, admin: httpx.AsyncClient, clock: ShiftedClock
) -> None:
    """50 concurrent requests against rpm_limit 10: exactly 10 served and recorded, 40 refused with 429."""
    clock.start_of_minute()
    key = await new_key(admin, rpm_limit=10)
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with bearer_client(gateway, key["key"], limits=limits) as client:
        responses = await asyncio.gather(*(chat(client) for _ in range(50)))
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 10, statuses
    for response in responses:
        if response.status_code != 200:
            assert rate_limit_error(response)["limit_type"] == "rpm_limit"
    assert len(await spend_logs(admin, key["key"])) == 10


async def test_tpm_limit_counts_the_tokens_used(
    gateway: GatewayServer, admin: httpx.AsyncClient, clock: ShiftedClock
) -> None:
    """tpm_limit counts prompt + completion tokens from the upstream's usage; the key's view shows them, and
    requests are refused once the minute's tokens reach the limit."""
    clock.start_of_minute()
    key = await new_key(admin, tpm_limit=60)
    used: list[int] = []
    async with bearer_client(gateway, key["key"]) as client:
        while True:
            response = await chat(client, "one two three")
            if response.status_code != 200:
                break
            used.append(response.json()["usage"]["total_tokens"])
            assert len(used) < 60
    error = rate_limit_error(response)
    assert error["limit_type"] == "tpm_limit" and error["current"] == sum(used)
    assert sum(used) >= 60 > sum(used[:-1])  # refused only once the limit is reached, never before
    assert f"Current: {sum(used)} tokens in the minute" in error["message"]
    usage = (await key_info(admin, key["key"]))["rate_limit_usage"]
    assert usage["tpm_limit"]["current"] == sum(used)
    assert usage["tpm_limit"]["limit"] == 60 and usage["tpm_limit"]["held"] == 0


async def test_max_parallel_requests_refuses_while_the_limit_is_in_flight(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """max_parallel_requests 2: with two slow streams in flight a third request is refused (retry-after 1);
    once one of them has finished, the next request is admitted."""
    key = await new_key(admin, max_parallel_requests=2)
    body = chat_body(f"slow {marker()}", DRIP_MODEL, stream=True)
    async with (
        bearer_client(gateway, key["key"]) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as first,
        client.stream("POST", "/v1/chat/completions", json=body) as second,
    ):
        assert first.status_code == second.status_code == 200
        refused = await chat(client)
        error = rate_limit_error(refused)
        assert refused.headers["retry-after"] == "1"
        assert error["limit_type"] == "max_parallel_requests" and error["reset_at"] is None
        assert "max_parallel_requests=2 Current: 2 requests in flight" in error["message"]
        info = await key_info(admin, key["key"])
        assert info["rate_limit_usage"]["max_parallel_requests"]["current"] == 2
        await first.aread()
        assert (await chat(client)).status_code == 200
        await second.aread()
    info = await key_info(admin, key["key"])
    assert info["rate_limit_usage"]["max_parallel_requests"]["current"] == 0


async def test_team_rpm_limit_is_shared_by_the_team_keys(
    gateway: GatewayServer, admin: httpx.AsyncClient, clock: ShiftedClock
) -> None:
    """A team's rpm_limit counts the requests of all its keys together, and the 429 names the team."""
    clock.start_of_minute()
    team = await create(admin, "/team/new", team_alias=f"t-{marker()[:12]}", rpm_limit=3)
    keys = [await new_key(admin, team_id=team["team_id"]) for _ in range(2)]
    assert await chats(gateway, keys[0]["key"], 2) == [200, 200]
    assert await chats(gateway, keys[1]["key"], 1) == [200]
    async with bearer_client(gateway, keys[1]["key"]) as client:
        error = rate_limit_error(await chat(client))
    assert error["message"].startswith(f"Rate limit exceeded! Team={team['team_alias']} rpm_limit=3 Current: 3")
    assert (error["entity"], error["entity_id"]) == ("team", team["team_id"])


async def test_shared_budget_object_limits_apply_per_entity_unless_overridden(
    gateway: GatewayServer, admin: httpx.AsyncClient, clock: ShiftedClock
) -> None:
    """A key with a budget_id inherits the budget object's rpm_limit (each key has its own count against it);
    a key's own rpm_limit wins; updating it to null falls back to the budget object's."""
    clock.start_of_minute()
    budget = await create(admin, "/budget/new", rpm_limit=2, max_budget=100)
    inheriting = [await new_key(admin, budget_id=budget["budget_id"]) for _ in range(2)]
    own = await new_key(admin, budget_id=budget["budget_id"], rpm_limit=4)
    for key in inheriting:
        assert await chats(gateway, key["key"], 3) == [200, 200, 429]
    assert await chats(gateway, own["key"], 5) == [200] * 4 + [429]
    info = await key_info(admin, own["key"])
    assert info["rpm_limit"] == 4 and info["rate_limit_usage"]["rpm_limit"]["current"] == 4
    response = await admin.post("/key/update", json={"key": own["key"], "rpm_limit": None})
    assert response.status_code == 200, response.text
    assert response.json()["rpm_limit"] == 2  # the budget object's limit is in effect now


async def test_budget_refusal_is_reported_before_a_rate_limit(
    gateway: GatewayServer, admin: httpx.AsyncClient, clock: ShiftedClock
) -> None:
    """When a budget and a rate limit both refuse, the 429 is the budget's (a retry cannot help) and neither is
    held: rate and budget lines are one all-or-nothing admission."""
    clock.start_of_minute()
    cost_usd = TOKENS_PER_REQUEST * FLAT_OUTPUT_NANOS_PER_TOKEN / 1e9
    key = await new_key(admin, rpm_limit=1, max_budget=cost_usd)
    assert await chats(gateway, key["key"], 1) == [200]
    async with bearer_client(gateway, key["key"]) as client:
        refused = await chat(client)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "budget_exceeded"
    assert "retry-after" not in refused.headers
    usage = (await key_info(admin, key["key"]))["rate_limit_usage"]["rpm_limit"]
    assert (usage["current"], usage["held"]) == (1, 0)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"tpm_limit": -5}, "tpm_limit"),
        ({"max_parallel_requests": 1.5}, "max_parallel_requests"),
        ({"rpm_limit": "10"}, "rpm_limit"),
        ({"rpm_limit": True}, "rpm_limit"),
        ({"tpm_limit": 10**16}, "tpm_limit"),
    ],
)
async def test_rate_limit_fields_reject_what_is_not_a_positive_integer(
    admin: httpx.AsyncClient, fields: dict[str, Any], param: str
) -> None:
    """A rate limit is a positive integer or null; anything else is a 400 naming the field (never stored)."""
    response = await admin.post("/key/generate", json=fields)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_rate_limits_show_on_keys_and_are_removable(admin: httpx.AsyncClient) -> None:
    """The views show each limit in effect; null removes an entity's own limit."""
    key = await new_key(admin, rpm_limit=7, tpm_limit=700, max_parallel_requests=3)
    assert (key["rpm_limit"], key["tpm_limit"], key["max_parallel_requests"]) == (7, 700, 3)
    assert set(key["rate_limit_usage"]) == {"rpm_limit", "tpm_limit", "max_parallel_requests"}
    response = await admin.post("/key/update", json={"key": key["key"], "tpm_limit": None})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["tpm_limit"] is None and updated["rpm_limit"] == 7
    assert set(updated["rate_limit_usage"]) == {"rpm_limit", "max_parallel_requests"}


async def test_requests_without_rate_limits_are_not_limited(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """No limit set anywhere: no rate counter takes part (requests pass, the view shows no usage)."""
    key = await new_key(admin, models=[FLAT_MODEL])
    assert await chats(gateway, key["key"], 3) == [200] * 3
    info = await key_info(admin, key["key"])
    assert info["rpm_limit"] is None and info["rate_limit_usage"] == {}
