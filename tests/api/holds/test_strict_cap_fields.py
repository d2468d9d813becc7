"""Strict mode (zero overshoot) with mixed output-cap fields: the clamp rewrites every field above it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.helpers import bearer_client, marker, new_key
from tests.api.holds.support import GREEDY_CHAT, GREEDY_CLAUDE, GREEDY_SLOW, OUTPUT_NANOS_PER_TOKEN, budget_usd, charged
from tests.api.routes.helpers import sent_with
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayServer

pytestmark = pytest.mark.parametrize("gateway", ["strict"], indirect=True)

AFFORDABLE_TOKENS = 20
BUDGET_NANOS = AFFORDABLE_TOKENS * OUTPUT_NANOS_PER_TOKEN  # the $0.01 key of the report, scaled: 20 tokens


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_strict_mode_max_completion_tokens_1_with_max_tokens_5000_cannot_overspend(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream, stream: bool
) -> None:
    """Bug: strict mode held max_completion_tokens: 1 and forwarded max_tokens: 5000 ($0.50 on a $0.01 key).
    Now the largest field sizes the hold, the clamp to the window's headroom rewrites every field above it, and
    the greedy upstream cannot write past the budget."""
    key = await new_key(admin, max_budget=budget_usd(BUDGET_NANOS), budget_duration="1d")
    word = marker()
    body = {
        "model": GREEDY_CHAT,
        "messages": [{"role": "user", "content": f"hello {word}"}],
        "max_completion_tokens": 1,
        "max_tokens": 5000,
        "stream": stream,
    }
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=body)
        refused = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-ledgergate-max-tokens-clamped"] == str(AFFORDABLE_TOKENS)
    assert refused.status_code == 429
    (sent,) = sent_with(fake_upstream, word)
    assert (sent["json"]["max_tokens"], sent["json"]["max_completion_tokens"]) == (AFFORDABLE_TOKENS, 1)
    spend_nanos, _ = await charged(admin, key)
    assert spend_nanos == BUDGET_NANOS


async def test_strict_mode_clamps_an_anthropic_max_tokens_to_the_headroom(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    key = await new_key(admin, max_budget=budget_usd(BUDGET_NANOS), budget_duration="1d")
    word = marker()
    body = {"model": GREEDY_CLAUDE, "max_tokens": 5000, "messages": [{"role": "user", "content": word}]}
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/messages", json=body)
    assert response.status_code == 200, response.text
    (sent,) = sent_with(fake_upstream, word)
    assert sent["json"]["max_tokens"] == AFFORDABLE_TOKENS
    assert (await charged(admin, key))[0] == BUDGET_NANOS


async def test_strict_mode_twenty_concurrent_uncapped_requests_never_overspend(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Zero overshoot in strict mode, whatever the concurrency, against an upstream that writes all it may."""
    budget_nanos = 5 * 64 * OUTPUT_NANOS_PER_TOKEN // 2
    key = await new_key(admin, max_budget=budget_usd(budget_nanos), budget_duration="1d")
    body = {"model": GREEDY_SLOW, "messages": [{"role": "user", "content": f"hello {marker()}"}]}
    async with bearer_client(gateway, key["key"]) as client:
        responses = await asyncio.gather(*(client.post("/v1/chat/completions", json=body) for _ in range(20)))
    assert {response.status_code for response in responses} == {200, 429}
    spend_nanos, _ = await charged(admin, key)
    assert spend_nanos <= budget_nanos
