"""Issue 12 report, the client's side: a budget 429 carried no retry-after, so SDKs retried it with their own
back-off (the OpenAI SDK retries a 429 unless told not to), and a client could keep hitting, or keep waiting past,
a window that had already reset. It now says when the window resets and that an automatic retry cannot pass."""

from __future__ import annotations

import httpx

from tests.api.helpers import bearer_client, marker, new_key
from tests.api.holds.support import GREEDY_CHAT, MAX_COST_NANOS, budget_usd
from tests.support.gateway import GatewayServer


async def _refused(gateway: GatewayServer, admin: httpx.AsyncClient, **window: object) -> httpx.Response:
    key = await new_key(admin, max_budget=budget_usd(MAX_COST_NANOS), **window)
    body = {"model": GREEDY_CHAT, "messages": [{"role": "user", "content": marker()}]}
    async with bearer_client(gateway, key["key"]) as client:
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        return await client.post("/v1/chat/completions", json=body)


async def test_budget_429_of_a_30s_window_has_retry_after_within_the_period_and_x_should_retry_false(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    refused = await _refused(gateway, admin, budget_duration="30s")
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "budget_exceeded"
    assert refused.headers["x-should-retry"] == "false"
    assert 1 <= int(refused.headers["retry-after"]) <= 30


async def test_budget_429_of_a_lifetime_budget_has_no_retry_after(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    refused = await _refused(gateway, admin)
    assert refused.status_code == 429
    assert refused.headers["x-should-retry"] == "false" and "retry-after" not in refused.headers
