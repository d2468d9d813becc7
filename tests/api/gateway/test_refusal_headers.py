"""Issue 12 part 5: the headers of a 429 (SPEC section 5). A budget refusal that cannot pass before its window
resets says ``x-should-retry: false`` and ``retry-after`` (seconds to the reset), so the OpenAI SDK does not retry
it; rate limits say when their minute ends."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest

from tests.api.helpers import bearer_client, chat_body, marker, new_key, upstream_requests
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import DRIP_MODEL, FLAT_MODEL, FLAT_OUTPUT_NANOS_PER_TOKEN, GatewayServer
from tests.support.timing import fresh_period_async, scaled

NANOS_PER_USD = 1_000_000_000
MAX_TOKENS = 4
REQUEST_USD = MAX_TOKENS * FLAT_OUTPUT_NANOS_PER_TOKEN / NANOS_PER_USD  # actual cost == maximum cost on FLAT_MODEL


def _seconds_to_next_hour() -> float:
    now = time.time()
    return 3600 - now % 3600


async def test_budget_429_bug_sdk_retried_each_refusal_twice_is_not_retried_by_the_openai_sdk(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """Regression (issue 12): budget 429s carried neither ``retry-after`` nor ``x-should-retry``, so the official
    ``openai`` SDK (max_retries=2 by default) sent every refused request three times. Now it sends it once."""
    key = await new_key(admin, max_budget=REQUEST_USD, budget_duration="1h")
    word = marker()
    sent: list[str] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request.url.path)

    http_client = httpx.AsyncClient(event_hooks={"request": [count]})
    base_url = gateway.base_url + "/v1"
    async with openai.AsyncOpenAI(base_url=base_url, api_key=key["key"], http_client=http_client) as sdk:
        messages: Any = [{"role": "user", "content": f"spend {word}"}]
        await sdk.chat.completions.create(model=FLAT_MODEL, messages=messages, max_tokens=MAX_TOKENS)
        with pytest.raises(openai.RateLimitError) as refused:
            await sdk.chat.completions.create(model=FLAT_MODEL, messages=messages, max_tokens=MAX_TOKENS)
    assert sent == ["/v1/chat/completions", "/v1/chat/completions"]  # one call each: no retry of the refusal
    assert len(upstream_requests(fake_upstream, word)) == 1
    headers = refused.value.response.headers
    assert headers["x-should-retry"] == "false"
    assert 1 <= int(headers["retry-after"]) <= math.ceil(_seconds_to_next_hour()) + 1
    assert refused.value.response.json()["error"]["type"] == "budget_exceeded"


async def test_budget_429_retry_after_counts_down_to_the_refusing_window_reset(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """``retry-after`` is the time to the refusing window's ``reset_at`` (a day window: next midnight UTC)."""
    key = await new_key(admin, max_budget=0, budget_duration="1d")
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=chat_body("hi", FLAT_MODEL, max_tokens=1))
    assert response.status_code == 429, response.text
    reset_at = datetime.fromisoformat(response.json()["error"]["reset_at"].replace("Z", "+00:00"))
    expected_s = (reset_at - datetime.now(UTC)).total_seconds()
    assert abs(int(response.headers["retry-after"]) - expected_s) <= 2
    assert response.headers["x-should-retry"] == "false"


async def test_lifetime_budget_429_says_do_not_retry_and_gives_no_reset(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A lifetime window never resets: ``x-should-retry: false`` and no ``retry-after`` (there is no time to wait)."""
    key = await new_key(admin, max_budget=0)
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=chat_body("hi", FLAT_MODEL, max_tokens=1))
    assert response.status_code == 429, response.text
    assert response.headers["x-should-retry"] == "false"
    assert "retry-after" not in response.headers


async def test_budget_429_caused_only_by_holds_in_flight_may_be_retried_in_a_second(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Refused because a request in flight holds the budget (nothing spent yet): it may pass once that request
    settles, so ``x-should-retry: true`` and ``retry-after: 1``."""
    key = await new_key(admin, max_budget=0.00001, budget_duration="1d")  # less than one DRIP_MODEL hold
    async with bearer_client(gateway, key["key"]) as client:
        body = chat_body("drip", DRIP_MODEL, max_tokens=40, stream=True)
        async with client.stream("POST", "/v1/chat/completions", json=body) as streaming:
            assert streaming.status_code == 200
            await asyncio.sleep(0.1)
            response = await client.post("/v1/chat/completions", json=chat_body("hi", FLAT_MODEL, max_tokens=1))
            await streaming.aread()
    assert response.status_code == 429, response.text
    assert response.headers["x-should-retry"] == "true"
    assert response.headers["retry-after"] == "1"


async def test_rate_limit_429_says_retry_after_the_minute(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """rpm refusals pass again when the minute ends: ``x-should-retry: true``, ``retry-after`` within the minute."""
    key = await new_key(admin, rpm_limit=1)
    await fresh_period_async(60, scaled(5))  # both requests in one minute
    async with bearer_client(gateway, key["key"]) as client:
        first = await client.post("/v1/chat/completions", json=chat_body("a", FLAT_MODEL, max_tokens=1))
        second = await client.post("/v1/chat/completions", json=chat_body("b", FLAT_MODEL, max_tokens=1))
    assert first.status_code == 200, first.text
    assert second.status_code == 429 and second.json()["error"]["type"] == "rate_limit_exceeded"
    assert second.headers["x-should-retry"] == "true"
    assert 1 <= int(second.headers["retry-after"]) <= 60
