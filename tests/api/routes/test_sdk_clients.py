"""The official SDKs against the new routes: the Anthropic SDK on /v1/messages, openai's client.responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.api.helpers import new_key
from tests.api.routes.conftest import (
    CLAUDE_FLAT_MODEL,
    CLAUDE_INPUT_NANOS_PER_TOKEN,
    CLAUDE_MODEL,
    CLAUDE_OUTPUT_NANOS_PER_TOKEN,
)
from tests.api.routes.helpers import assert_charged
from tests.support.gateway import CHAT_INPUT_NANOS_PER_TOKEN, CHAT_MODEL, CHAT_OUTPUT_NANOS_PER_TOKEN, GatewayServer

NANOS_PER_USD = 1_000_000_000


@pytest.fixture
async def key(admin: httpx.AsyncClient) -> dict[str, Any]:
    return await new_key(admin, max_budget=10, budget_limits=[{"budget_duration": "1d", "max_budget": 10}])


@pytest.fixture
async def claude(gateway: GatewayServer, key: dict[str, Any]) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=gateway.base_url, api_key=key["key"], max_retries=0) as client:
        yield client


@pytest.fixture
async def sdk(gateway: GatewayServer, key: dict[str, Any]) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gateway.base_url + "/v1", api_key=key["key"], max_retries=0) as client:
        yield client


def _claude_cost(usage: anthropic.types.Usage) -> int:
    return usage.input_tokens * CLAUDE_INPUT_NANOS_PER_TOKEN + usage.output_tokens * CLAUDE_OUTPUT_NANOS_PER_TOKEN


async def test_anthropic_sdk_messages_and_stream_are_charged_exactly(
    admin: httpx.AsyncClient, key: dict[str, Any], claude: anthropic.AsyncAnthropic
) -> None:
    """The Anthropic SDK works unchanged against the gateway (x-api-key auth, its SSE events, message_stop
    delivered after the charge), and each call is charged its reported usage x prices."""
    message = await claude.messages.create(
        model=CLAUDE_MODEL, max_tokens=7, messages=[{"role": "user", "content": "one two three"}]
    )
    assert message.content[0].type == "text" and message.content[0].text
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3 + 3, 7)
    async with claude.messages.stream(
        model=CLAUDE_MODEL, max_tokens=5, messages=[{"role": "user", "content": "a b"}]
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        streamed = await stream.get_final_message()
    assert text == "This is a mock response."
    assert (streamed.usage.input_tokens, streamed.usage.output_tokens) == (2 + 3, 5)
    assert streamed.stop_reason == "end_turn"
    await assert_charged(admin, key, [_claude_cost(message.usage), _claude_cost(streamed.usage)], "messages")


async def test_anthropic_sdk_sees_the_budget_429(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """A spent budget reaches Anthropic SDK users as its RateLimitError carrying the budget_exceeded details."""
    budget_usd = 4 * CLAUDE_OUTPUT_NANOS_PER_TOKEN / NANOS_PER_USD
    spent = await new_key(admin, max_budget=budget_usd, budget_limits=[{"budget_duration": "1d", "max_budget": 1}])
    async with anthropic.AsyncAnthropic(base_url=gateway.base_url, api_key=spent["key"], max_retries=0) as client:
        await client.messages.create(model=CLAUDE_FLAT_MODEL, max_tokens=4, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(anthropic.RateLimitError) as refused:
            await client.messages.create(
                model=CLAUDE_FLAT_MODEL, max_tokens=4, messages=[{"role": "user", "content": "x"}]
            )
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["error"]["type"] == "budget_exceeded"
    await assert_charged(admin, spent, [4 * CLAUDE_OUTPUT_NANOS_PER_TOKEN], "messages")


async def test_openai_sdk_responses_and_stream_are_charged_exactly(
    admin: httpx.AsyncClient, key: dict[str, Any], sdk: openai.AsyncOpenAI
) -> None:
    """openai's client.responses.create works against the gateway, streamed or not, and each call is charged its
    usage x prices; the stream's last event is the (withheld, then released) response.completed."""
    response = await sdk.responses.create(model=CHAT_MODEL, input="one two three", max_output_tokens=32)
    assert response.output_text == "This is a mock response. " * 3 + "This"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (3 + 3, 16)
    stream = await sdk.responses.create(model=CHAT_MODEL, input="a b", max_output_tokens=32, stream=True)
    events = [event async for event in stream]
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.usage is not None
    assert final.response.output_text == response.output_text
    expected = [
        usage.input_tokens * CHAT_INPUT_NANOS_PER_TOKEN + usage.output_tokens * CHAT_OUTPUT_NANOS_PER_TOKEN
        for usage in (response.usage, final.response.usage)
    ]
    await assert_charged(admin, key, expected, "responses")
