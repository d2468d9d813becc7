"""Issue 12 bug: the output cap that sized a hold was never sent upstream. An uncapped request was held for the
deployment's cap while a greedy upstream wrote 50,000 tokens (a $0.05/day key reached $0.50; 20 concurrent
uncapped requests reached twice the documented bound). Now the cap held is the cap sent, on every route."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.api.helpers import bearer_client, marker, new_key
from tests.api.holds.support import (
    DEPLOYMENT_CAP_TOKENS,
    GREEDY_CHAT,
    GREEDY_CLAUDE,
    GREEDY_SLOW,
    MAX_COST_NANOS,
    budget_usd,
    charged,
)
from tests.api.routes.helpers import sent_with
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayServer

BUDGET_NANOS = MAX_COST_NANOS * 5 // 2  # room for three requests in standard mode: 0, 1 and 2 holds < budget


def _request(route: str, word: str, stream: bool) -> tuple[str, dict[str, Any], str]:
    """(path, body without a usable cap, the cap field the upstream must receive)."""
    if route == "chat":
        body = {"model": GREEDY_CHAT, "messages": [{"role": "user", "content": f"hello {word}"}]}
        return "/v1/chat/completions", {**body, "stream": stream}, "max_tokens"
    if route == "messages":
        # Anthropic requires max_tokens: the client sends one far above the deployment's cap.
        body = {"model": GREEDY_CLAUDE, "max_tokens": 100_000, "messages": [{"role": "user", "content": word}]}
        return "/v1/messages", {**body, "stream": stream}, "max_tokens"
    return "/v1/responses", {"model": GREEDY_CHAT, "input": f"hello {word}", "stream": stream}, "max_output_tokens"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("route", ["chat", "messages", "responses"])
async def test_uncapped_request_is_sent_the_cap_it_was_held_for_and_spend_stays_in_bound(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream, route: str, stream: bool
) -> None:
    """Bug: no max_tokens from the client -> held for the deployment's cap, forwarded uncapped, billed 50,000
    tokens. Now the upstream receives the held cap; the window ends at most one request's maximum cost over."""
    key = await new_key(admin, max_budget=budget_usd(BUDGET_NANOS), budget_duration="1d")
    word = marker()
    path, body, cap_field = _request(route, word, stream)
    statuses = []
    async with bearer_client(gateway, key["key"]) as client:
        for _ in range(6):
            response = await client.post(path, json=body)
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
            if route == "messages":
                assert response.headers["x-ledgergate-max-tokens-clamped"] == str(DEPLOYMENT_CAP_TOKENS)
    assert statuses == [200, 200, 200, 429]
    received = sent_with(fake_upstream, word)
    assert len(received) == 3
    assert all(request["json"][cap_field] == DEPLOYMENT_CAP_TOKENS for request in received)
    spend_nanos, rows = await charged(admin, key)
    assert all(row["completion_tokens"] <= DEPLOYMENT_CAP_TOKENS for row in rows)
    assert spend_nanos == 3 * MAX_COST_NANOS <= BUDGET_NANOS + MAX_COST_NANOS


async def test_twenty_concurrent_uncapped_requests_against_a_slow_upstream_overshoot_by_one_request_at_most(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """Bug: 20 concurrent uncapped requests against a slow upstream took spend to twice the documented bound
    (each held 4,096 tokens and was billed 50,000). Now every admitted one is capped at what it held."""
    key = await new_key(admin, max_budget=budget_usd(BUDGET_NANOS), budget_duration="1d")
    word = marker()
    body = {"model": GREEDY_SLOW, "messages": [{"role": "user", "content": f"hello {word}"}]}
    async with bearer_client(gateway, key["key"]) as client:
        responses = await asyncio.gather(*(client.post("/v1/chat/completions", json=body) for _ in range(20)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) == 3  # admitted while spent + held < budget: 0, 1 and 2 maximum costs
    spend_nanos, rows = await charged(admin, key)
    assert len(rows) == statuses.count(200)
    assert spend_nanos <= BUDGET_NANOS + MAX_COST_NANOS
    assert all(request["json"]["max_tokens"] == DEPLOYMENT_CAP_TOKENS for request in sent_with(fake_upstream, word))
