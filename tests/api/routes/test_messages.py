"""Anthropic-style POST /v1/messages through the gateway: admission, exact charge, strict clamp, failures."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import eventually, key_info, marker, new_key, spend_logs, window_held
from tests.api.routes.conftest import (
    CLAUDE_CACHE_READ_NANOS_PER_TOKEN,
    CLAUDE_CACHED_MODEL,
    CLAUDE_CACHED_TOKENS,
    CLAUDE_DRIP_MODEL,
    CLAUDE_FAILING_MODEL,
    CLAUDE_FLAT_MODEL,
    CLAUDE_INPUT_NANOS_PER_TOKEN,
    CLAUDE_MODEL,
    CLAUDE_OUTPUT_NANOS_PER_TOKEN,
)
from tests.api.routes.helpers import anthropic_client, assert_charged, sent_with, sse_events
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import CHAT_MODEL, DRIP_MODEL_TOKENS, GatewayServer

# Free input: HOLD_TOKENS of output cost exactly FLAT_HOLD_NANOS.
HOLD_TOKENS = 10
FLAT_HOLD_NANOS = HOLD_TOKENS * CLAUDE_OUTPUT_NANOS_PER_TOKEN
NANOS_PER_USD = 1_000_000_000


def _body(text: str, model: str = CLAUDE_MODEL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": HOLD_TOKENS, "messages": [{"role": "user", "content": text}], **extra}


def _cost(input_tokens: int, output_tokens: int) -> int:
    return input_tokens * CLAUDE_INPUT_NANOS_PER_TOKEN + output_tokens * CLAUDE_OUTPUT_NANOS_PER_TOKEN


async def _key(admin: httpx.AsyncClient, max_budget_usd: float = 10) -> dict[str, Any]:
    # The extra window is there to read ``held`` from the key view.
    return await new_key(admin, max_budget=max_budget_usd, budget_limits=[{"budget_duration": "1d", "max_budget": 10}])


async def _post(gateway: GatewayServer, key: dict[str, Any], body: dict[str, Any], **kw: Any) -> httpx.Response:
    async with anthropic_client(gateway, key["key"]) as client:
        return await client.post("/v1/messages", json=body, **kw)


async def test_messages_reply_is_charged_usage_times_prices_exactly(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """A /v1/messages reply is charged its reported usage x the deployment's prices, to the nano, and reaches the
    Anthropic upstream with Anthropic auth (x-api-key, anthropic-version), never the OpenAI Bearer header."""
    key = await _key(admin)
    word = marker()
    body = _body(f"one two three {word}", max_tokens=7)
    response = await _post(gateway, key, body)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["type"] == "message" and reply["content"][0]["text"]
    assert reply["usage"] == {"input_tokens": 4 + 3, "output_tokens": 7}
    expected = _cost(7, 7)
    assert response.headers["x-ledgergate-cost-nanos"] == str(expected)
    (sent,) = sent_with(fake_upstream, word)
    assert sent["path"] == "/v1/messages"
    assert sent["json"] == {**body, "model": "mock-claude"}
    assert sent["headers"]["x-api-key"] == "x"
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent["headers"]
    await assert_charged(admin, key, [expected], "messages")


async def test_messages_stream_is_charged_before_message_stop_reaches_the_client(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A streamed message is charged message_start's input plus message_delta's output, and the spend record
    exists by the time the client reads message_stop (the gateway withholds it until the charge is durable)."""
    key = await _key(admin)
    response = await _post(gateway, key, _body("a b c d", stream=True, max_tokens=6))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.content)
    kinds = [event["type"] for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert [event["_event"] for event in events] == kinds
    text = "".join(event["delta"]["text"] for event in events if event["type"] == "content_block_delta")
    assert text == "This is a mock response. This"
    rows = await spend_logs(admin, key["key"])  # no polling: the record precedes message_stop
    assert [row["cost_nanos"] for row in rows] == [_cost(4 + 3, 6)]
    await assert_charged(admin, key, [_cost(4 + 3, 6)], "messages")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_messages_cache_reads_are_charged_at_the_cache_read_price(
    gateway: GatewayServer, admin: httpx.AsyncClient, stream: bool
) -> None:
    """Anthropic reports cache reads apart from input_tokens: they are added back to the prompt and priced at the
    cache-read rate, not the input rate (nor dropped)."""
    key = await _key(admin)
    response = await _post(gateway, key, _body("one two three four", CLAUDE_CACHED_MODEL, stream=stream))
    assert response.status_code == 200, response.text
    prompt_tokens = 4 + 3
    uncached = prompt_tokens - CLAUDE_CACHED_TOKENS
    expected = _cost(uncached, HOLD_TOKENS) + CLAUDE_CACHED_TOKENS * CLAUDE_CACHE_READ_NANOS_PER_TOKEN
    await assert_charged(admin, key, [expected], "messages")
    (row,) = await spend_logs(admin, key["key"])
    assert row["prompt_tokens"] == prompt_tokens


async def test_messages_forward_client_anthropic_headers(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """The client's anthropic-version and anthropic-beta reach the upstream (features depend on them); the
    client's own key does not (the deployment's key replaces it)."""
    key = await _key(admin)
    word = marker()
    headers = {"anthropic-version": "2024-10-22", "anthropic-beta": "prompt-caching-2024-07-31"}
    response = await _post(gateway, key, _body(word), headers=headers)
    assert response.status_code == 200, response.text
    (sent,) = sent_with(fake_upstream, word)
    assert sent["headers"]["anthropic-version"] == "2024-10-22"
    assert sent["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert sent["headers"]["x-api-key"] == "x"


async def test_messages_end_user_is_the_customer(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """Anthropic's metadata.user_id plays the role of OpenAI's ``user``: the request's customer in the ledger."""
    key = await _key(admin)
    customer = f"cust-{marker()}"
    response = await _post(gateway, key, _body("hi", metadata={"user_id": customer}))
    assert response.status_code == 200, response.text
    (row,) = await spend_logs(admin, key["key"])
    assert row["end_user"] == customer


async def test_messages_requests_the_route_cannot_serve_are_4xx_without_upstream_call(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """No max_tokens (Anthropic requires it: the hold needs a cap), an OpenAI-compatible model (no translation
    between formats) and an unknown model are refused before any hold or upstream call."""
    key = await _key(admin)
    word = marker()
    no_cap = {"model": CLAUDE_MODEL, "messages": [{"role": "user", "content": word}]}
    responses = [
        await _post(gateway, key, no_cap),
        await _post(gateway, key, _body(word, CHAT_MODEL)),
        await _post(gateway, key, _body(word, "no-such-model")),
    ]
    assert [r.status_code for r in responses] == [400, 400, 404]
    assert [r.json()["error"]["param"] for r in responses] == ["max_tokens", "model", "model"]
    assert "not an Anthropic-compatible deployment" in responses[1].json()["error"]["message"]
    assert sent_with(fake_upstream, word) == []
    assert await spend_logs(admin, key["key"]) == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_messages_are_refused_with_429_once_the_budget_is_spent(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream, stream: bool
) -> None:
    """/v1/messages goes through the same admission as chat: a key whose budget is spent gets the budget 429 and
    nothing reaches the upstream."""
    key = await _key(admin, max_budget_usd=FLAT_HOLD_NANOS / NANOS_PER_USD)
    first = await _post(gateway, key, _body("spend it all", CLAUDE_FLAT_MODEL))
    assert first.status_code == 200, first.text
    word = marker()
    refused = await _post(gateway, key, _body(word, CLAUDE_FLAT_MODEL, stream=stream))
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["type"] == "budget_exceeded" and error["message"].startswith("Budget has been exceeded!")
    assert sent_with(fake_upstream, word) == []
    await assert_charged(admin, key, [FLAT_HOLD_NANOS], "messages")


@pytest.mark.parametrize("gateway", ["strict"], indirect=True)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_messages_strict_mode_clamps_max_tokens_to_the_budget_left(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream, stream: bool
) -> None:
    """Strict mode lowers max_tokens to what the budget left pays for, in the body the upstream receives, so the
    Anthropic upstream can never generate past the budget."""
    affordable = HOLD_TOKENS // 2
    key = await _key(admin, max_budget_usd=affordable * CLAUDE_OUTPUT_NANOS_PER_TOKEN / NANOS_PER_USD)
    word = marker()
    response = await _post(gateway, key, _body(word, CLAUDE_FLAT_MODEL, stream=stream))
    assert response.status_code == 200, response.text
    assert response.headers["x-ledgergate-max-tokens-clamped"] == str(affordable)
    (sent,) = sent_with(fake_upstream, word)
    assert sent["json"]["max_tokens"] == affordable
    await assert_charged(admin, key, [affordable * CLAUDE_OUTPUT_NANOS_PER_TOKEN], "messages")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_messages_upstream_error_passes_through_and_releases_the_hold(
    gateway: GatewayServer, admin: httpx.AsyncClient, stream: bool
) -> None:
    """An upstream 500 reaches the client with its status and message, costs nothing, and frees the hold (a hold
    left behind would refuse the next request: it is larger than the budget)."""
    key = await _key(admin, max_budget_usd=FLAT_HOLD_NANOS / 2 / NANOS_PER_USD)
    response = await _post(gateway, key, _body("fail", CLAUDE_FAILING_MODEL, stream=stream))
    assert response.status_code == 500, response.text
    error = response.json()["error"]
    assert error["message"] == "mock upstream error 500" and error["type"] == "api_error"
    rows = await spend_logs(admin, key["key"])
    assert [(row["status"], row["cost_nanos"]) for row in rows] == [("error", 0)]
    assert window_held(await key_info(admin, key["token"])) == [0]
    again = await _post(gateway, key, _body("again", CLAUDE_FLAT_MODEL))
    assert again.status_code == 200, again.text


async def test_messages_client_disconnect_mid_stream_is_charged_and_leaves_no_hold(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A client that hangs up mid-message is charged for what was generated (the input message_start reported,
    at least a token per delta seen), the record says ``cancelled`` and the rest of the hold is freed."""
    key = await _key(admin, max_budget_usd=1)
    body = _body(f"long {marker()}", CLAUDE_DRIP_MODEL, max_tokens=DRIP_MODEL_TOKENS, stream=True)
    deltas = 0
    async with (
        anthropic_client(gateway, key["key"]) as client,
        client.stream("POST", "/v1/messages", json=body) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data:") and '"content_block_delta"' in line:
                deltas += 1
            if deltas == 3:
                break  # leaving the block closes the connection mid-stream

    async def cancelled_rows() -> list[dict[str, Any]]:
        return [row for row in await spend_logs(admin, key["key"]) if row["status"] == "cancelled"]

    rows = await eventually(cancelled_rows, bool, timeout_s=2.0)
    assert len(rows) == 1, "the disconnected stream wrote no cancelled spend record"
    (row,) = rows
    assert row["prompt_tokens"] == 2 + 3  # message_start's exact input, not the body-size bound
    assert 3 <= row["completion_tokens"] < DRIP_MODEL_TOKENS
    assert row["cost_nanos"] == row["completion_tokens"] * CLAUDE_OUTPUT_NANOS_PER_TOKEN
    info = await eventually(lambda: key_info(admin, key["token"]), lambda info: window_held(info) == [0])
    assert window_held(info) == [0]
    assert info["spend"] == row["spend"]
