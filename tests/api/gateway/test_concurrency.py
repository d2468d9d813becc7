"""Budgets under concurrent load, in both budget modes: bounded overshoot, exact ledger, LiteLLM-style 429s."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.helpers import bearer_client, chat_body, key_info, marker, new_key, spend_logs, upstream_requests, usd
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import FLAT_MODEL, FLAT_OUTPUT_NANOS_PER_TOKEN, GatewayServer

CONCURRENT_REQUESTS = 100
TOKENS_PER_REQUEST = 5
# Input is free on FLAT_MODEL and the fake generates exactly max_tokens (<= 16), so actual cost == maximum cost.
COST_NANOS = TOKENS_PER_REQUEST * FLAT_OUTPUT_NANOS_PER_TOKEN
REQUESTS_PAID_FOR = 10
REFUSAL_FIELDS = {
    "message",
    "type",
    "param",
    "code",
    "entity",
    "entity_id",
    "budget_duration",
    "spend",
    "max_budget",
    "reset_at",
}


def _is_next_top_of_hour(instant: str) -> bool:
    reset_at = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    until_reset = reset_at - datetime.now(UTC)
    return reset_at.minute == reset_at.second == 0 and timedelta(0) < until_reset <= timedelta(hours=1)


@pytest.mark.parametrize(("gateway", "max_served"), [("standard", 11), ("strict", 10)], indirect=["gateway"])
async def test_concurrent_requests_cannot_overshoot_the_window(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream, max_served: int
) -> None:
    """100 racing requests against a window that pays for 10: holds are placed atomically, so standard mode
    overshoots by at most one request and strict mode not at all; the ledger matches the key's spend exactly."""
    budget_usd = usd(REQUESTS_PAID_FOR * COST_NANOS)
    key = await new_key(admin, max_budget=budget_usd, budget_duration="1h")
    word = marker()
    body = chat_body(f"go {word}", FLAT_MODEL, max_tokens=TOKENS_PER_REQUEST)
    limits = httpx.Limits(max_connections=CONCURRENT_REQUESTS, max_keepalive_connections=CONCURRENT_REQUESTS)
    async with bearer_client(gateway, key["key"], limits=limits) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/chat/completions", json=body) for _ in range(CONCURRENT_REQUESTS))
        )
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert REQUESTS_PAID_FOR <= len(served) <= max_served, [r.status_code for r in responses]
    for response in refused:
        assert response.status_code == 429, response.text
        error: dict[str, Any] = response.json()["error"]
        assert set(error) >= REFUSAL_FIELDS
        assert error["type"] == "budget_exceeded"
        assert (error["entity"], error["entity_id"]) == ("key", key["token"])
        assert error["budget_duration"] == "1h"
        assert error["max_budget"] == budget_usd
        assert _is_next_top_of_hour(error["reset_at"])
        assert isinstance(error["spend"], float | int)
        assert error["message"].startswith(f"Budget has been exceeded! Key={key['key_alias']} window=1h")
    assert len(upstream_requests(fake_upstream, word)) == len(served), "a refused request reached the upstream"
    rows = await spend_logs(admin, key["key"])
    assert len(rows) == len(served)
    assert all(row["cost_nanos"] == COST_NANOS and row["status"] == "success" for row in rows)
    info = await key_info(admin, key["token"])
    assert info["spend"] == usd(sum(row["cost_nanos"] for row in rows)) == usd(len(served) * COST_NANOS)


@pytest.mark.parametrize("gateway", ["strict"], indirect=True)
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_strict_mode_clamps_max_tokens_to_what_the_window_can_pay(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream, field: str
) -> None:
    """Strict mode never lets the upstream generate more than the remaining budget pays for: the cap sent
    upstream is lowered, the client is told in a header, and the window ends exactly at its limit."""
    affordable_tokens = 10
    key = await new_key(admin, max_budget=usd(affordable_tokens * FLAT_OUTPUT_NANOS_PER_TOKEN), budget_duration="1d")
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        first = await client.post("/v1/chat/completions", json=chat_body(f"go {word}", FLAT_MODEL, **{field: 50}))
        second = await client.post("/v1/chat/completions", json=chat_body(f"go {word}", FLAT_MODEL, **{field: 50}))
    assert first.status_code == 200, first.text
    assert first.headers["x-ledgergate-max-tokens-clamped"] == str(affordable_tokens)
    (sent,) = upstream_requests(fake_upstream, word)
    assert sent["json"][field] == affordable_tokens
    assert first.json()["usage"]["completion_tokens"] == affordable_tokens
    assert second.status_code == 429 and second.json()["error"]["type"] == "budget_exceeded"
    info = await key_info(admin, key["token"])
    assert info["spend"] == info["max_budget"]


@pytest.mark.parametrize("gateway", ["strict"], indirect=True)
async def test_strict_mode_does_not_clamp_when_the_window_can_pay(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """The clamp header appears only when the cap was actually lowered."""
    key = await new_key(admin, max_budget=1)
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=chat_body("go", FLAT_MODEL, max_tokens=8))
    assert response.status_code == 200, response.text
    assert "x-ledgergate-max-tokens-clamped" not in response.headers
