"""OpenAI POST /v1/responses through the gateway: admission, exact charge, strict clamp, failures."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import bearer_client, eventually, key_info, marker, new_key, spend_logs, window_held
from tests.api.routes.conftest import CLAUDE_MODEL
from tests.api.routes.helpers import assert_charged, sent_with, sse_events
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import (
    CHAT_INPUT_NANOS_PER_TOKEN,
    CHAT_MODEL,
    CHAT_OUTPUT_NANOS_PER_TOKEN,
    DRIP_MODEL,
    DRIP_MODEL_TOKENS,
    FAILING_MODEL,
    FLAT_MODEL,
    FLAT_OUTPUT_NANOS_PER_TOKEN,
    GatewayServer,
)

HOLD_TOKENS = 10
FLAT_HOLD_NANOS = HOLD_TOKENS * FLAT_OUTPUT_NANOS_PER_TOKEN
NANOS_PER_USD = 1_000_000_000


def _body(text: str, model: str = CHAT_MODEL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "input": text, "max_output_tokens": HOLD_TOKENS, **extra}


def _cost(input_tokens: int, output_tokens: int) -> int:
    return input_tokens * CHAT_INPUT_NANOS_PER_TOKEN + output_tokens * CHAT_OUTPUT_NANOS_PER_TOKEN


async def _key(admin: httpx.AsyncClient, max_budget_usd: float = 10) -> dict[str, Any]:
    # The extra window is there to read ``held`` from the key view.
    return await new_key(admin, max_budget=max_budget_usd, budget_limits=[{"budget_duration": "1d", "max_budget": 10}])


async def _post(gateway: GatewayServer, key: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
    async with bearer_client(gateway, key["key"]) as client:
        return await client.post("/v1/responses", json=body)


async def test_responses_reply_is_charged_usage_times_prices_exactly(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """A /v1/responses reply is charged usage.input_tokens/output_tokens x prices, to the nano; the body goes
    upstream unchanged but for the model name."""
    key = await _key(admin)
    word = marker()
    body = _body(f"one two three {word}", max_output_tokens=32)
    response = await _post(gateway, key, body)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["object"] == "response" and reply["status"] == "completed"
    assert (reply["usage"]["input_tokens"], reply["usage"]["output_tokens"]) == (4 + 3, 16)
    expected = _cost(7, 16)
    assert response.headers["x-ledgergate-cost-nanos"] == str(expected)
    (sent,) = sent_with(fake_upstream, word)
    assert sent["path"] == "/v1/responses"
    assert sent["json"] == {**body, "model": "gpt-4o-mini"}
    assert sent["headers"]["authorization"] == "Bearer x"
    await assert_charged(admin, key, [expected], "responses")


@pytest.mark.parametrize("max_output_tokens", [6, 32], ids=["incomplete", "completed"])
async def test_responses_stream_is_charged_before_the_terminal_event_reaches_the_client(
    gateway: GatewayServer, admin: httpx.AsyncClient, max_output_tokens: int
) -> None:
    """A streamed response is charged the usage of its terminal event (response.completed, or response.incomplete
    when it hit max_output_tokens), and the spend record exists by the time the client reads that event."""
    key = await _key(admin)
    response = await _post(gateway, key, _body("a b c d", stream=True, max_output_tokens=max_output_tokens))
    assert response.status_code == 200
    events = sse_events(response.content)
    final = events[-1]
    output_tokens = min(max_output_tokens, 16)
    assert final["type"] == f"response.{final['response']['status']}"
    assert final["response"]["usage"]["output_tokens"] == output_tokens
    assert events[0]["type"] == "response.created"
    assert sum(event["type"] == "response.output_text.delta" for event in events) == output_tokens
    rows = await spend_logs(admin, key["key"])  # no polling: the record precedes the terminal event
    assert [row["cost_nanos"] for row in rows] == [_cost(4 + 3, output_tokens)]
    await assert_charged(admin, key, [_cost(4 + 3, output_tokens)], "responses")


async def test_responses_requests_the_route_cannot_serve_are_400_without_upstream_call(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """An Anthropic deployment (no Responses API) and background mode (its reply carries no usage to charge)
    are refused before any hold or upstream call."""
    key = await _key(admin)
    word = marker()
    anthropic = await _post(gateway, key, _body(word, CLAUDE_MODEL))
    background = await _post(gateway, key, _body(word, background=True))
    bad_cap = await _post(gateway, key, _body(word, max_output_tokens=0))
    assert [r.status_code for r in (anthropic, background, bad_cap)] == [400, 400, 400]
    assert [r.json()["error"]["param"] for r in (anthropic, background, bad_cap)] == [
        "model",
        "background",
        "max_output_tokens",
    ]
    assert sent_with(fake_upstream, word) == []
    assert await spend_logs(admin, key["key"]) == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_responses_are_refused_with_429_once_the_budget_is_spent(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream, stream: bool
) -> None:
    """/v1/responses goes through the same admission as chat: a key whose budget is spent gets the budget 429
    and nothing reaches the upstream."""
    key = await _key(admin, max_budget_usd=FLAT_HOLD_NANOS / NANOS_PER_USD)
    first = await _post(gateway, key, _body("spend it all", FLAT_MODEL))
    assert first.status_code == 200, first.text
    word = marker()
    refused = await _post(gateway, key, _body(word, FLAT_MODEL, stream=stream))
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["type"] == "budget_exceeded" and error["message"].startswith("Budget has been exceeded!")
    assert sent_with(fake_upstream, word) == []
    await assert_charged(admin, key, [FLAT_HOLD_NANOS], "responses")


@pytest.mark.parametrize("gateway", ["strict"], indirect=True)
@pytest.mark.parametrize(
    ("cap", "expected_sent"),
    [(HOLD_TOKENS, HOLD_TOKENS // 2), (None, HOLD_TOKENS // 2)],
    ids=["client-cap", "no-client-cap"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_responses_strict_mode_clamps_max_output_tokens_to_the_budget_left(
    gateway: GatewayServer,
    admin: httpx.AsyncClient,
    fake_upstream: FakeUpstream,
    cap: int | None,
    expected_sent: int,
    stream: bool,
) -> None:
    """Strict mode sets max_output_tokens to what the budget left pays for, whether or not the client set one,
    in the body the upstream receives."""
    key = await _key(admin, max_budget_usd=expected_sent * FLAT_OUTPUT_NANOS_PER_TOKEN / NANOS_PER_USD)
    word = marker()
    body = _body(word, FLAT_MODEL, stream=stream)
    if cap is None:
        del body["max_output_tokens"]
    response = await _post(gateway, key, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-ledgergate-max-tokens-clamped"] == str(expected_sent)
    (sent,) = sent_with(fake_upstream, word)
    assert sent["json"]["max_output_tokens"] == expected_sent
    await assert_charged(admin, key, [expected_sent * FLAT_OUTPUT_NANOS_PER_TOKEN], "responses")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_responses_upstream_error_passes_through_and_releases_the_hold(
    gateway: GatewayServer, admin: httpx.AsyncClient, stream: bool
) -> None:
    """An upstream 500 reaches the client as an OpenAI-style 500, costs nothing, and frees the hold (a hold left
    behind would refuse the next request: it is larger than the budget)."""
    key = await _key(admin, max_budget_usd=FLAT_HOLD_NANOS / 2 / NANOS_PER_USD)
    response = await _post(gateway, key, _body("fail", FAILING_MODEL, stream=stream))
    assert response.status_code == 500, response.text
    error = response.json()["error"]
    assert error["message"] == "mock upstream error 500" and error["type"] == "api_error"
    rows = await spend_logs(admin, key["key"])
    assert [(row["status"], row["cost_nanos"]) for row in rows] == [("error", 0)]
    assert window_held(await key_info(admin, key["token"])) == [0]
    again = await _post(gateway, key, _body("again", FLAT_MODEL))
    assert again.status_code == 200, again.text


async def test_responses_client_disconnect_mid_stream_is_charged_and_leaves_no_hold(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A client that hangs up mid-response (before response.completed brought usage) is charged at least a token
    per delta seen, the record says ``cancelled`` and the rest of the hold is freed."""
    key = await _key(admin, max_budget_usd=1)
    body = _body(f"long {marker()}", DRIP_MODEL, max_output_tokens=DRIP_MODEL_TOKENS, stream=True)
    deltas = 0
    async with (
        bearer_client(gateway, key["key"]) as client,
        client.stream("POST", "/v1/responses", json=body) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data:") and '"response.output_text.delta"' in line:
                deltas += 1
            if deltas == 3:
                break  # leaving the block closes the connection mid-stream

    async def cancelled_rows() -> list[dict[str, Any]]:
        return [row for row in await spend_logs(admin, key["key"]) if row["status"] == "cancelled"]

    rows = await eventually(cancelled_rows, bool, timeout_s=2.0)
    assert len(rows) == 1, "the disconnected stream wrote no cancelled spend record"
    (row,) = rows
    assert 3 <= row["completion_tokens"] < DRIP_MODEL_TOKENS
    assert row["cost_nanos"] == row["completion_tokens"] * FLAT_OUTPUT_NANOS_PER_TOKEN
    info = await eventually(lambda: key_info(admin, key["token"]), lambda info: window_held(info) == [0])
    assert window_held(info) == [0]
    assert info["spend"] == row["spend"]
