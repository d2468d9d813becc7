"""Upstream failures and client disconnects: errors pass through, holds are released, generation is charged."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import (
    assert_error_body,
    bearer_client,
    chat_body,
    eventually,
    key_info,
    marker,
    new_key,
    spend_logs,
    window_held,
)
from tests.support.gateway import (
    DEAD_MODEL,
    DRIP_MODEL,
    DRIP_MODEL_TOKENS,
    FAILING_MODEL,
    FLAT_MODEL,
    FLAT_OUTPUT_NANOS_PER_TOKEN,
    SLOW_MODEL,
    GatewayServer,
)

# One request's hold (10 tokens x 2000 nanos) exceeds this budget, so a hold left behind would refuse the next
# request: "still admitted afterwards" proves the hold was released.
TIGHT_BUDGET_USD = 0.00001
HOLD_TOKENS = 10


async def _tight_key(admin: httpx.AsyncClient) -> dict[str, Any]:
    # The extra window is there to read ``held`` from the key view.
    return await new_key(
        admin,
        max_budget=TIGHT_BUDGET_USD,
        budget_duration="1h",
        budget_limits=[{"budget_duration": "1d", "max_budget": 1}],
    )


async def _assert_released_and_admitted(gateway: GatewayServer, admin: httpx.AsyncClient, key: dict[str, Any]) -> None:
    info = await key_info(admin, key["token"])
    assert window_held(info) == [0]
    assert info["spend"] == 0
    async with bearer_client(gateway, key["key"]) as client:
        again = await client.post("/v1/chat/completions", json=chat_body("again", FLAT_MODEL, max_tokens=HOLD_TOKENS))
    assert again.status_code == 200, again.text


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_upstream_error_passes_through_and_releases_the_hold(
    gateway: GatewayServer, admin: httpx.AsyncClient, stream: bool
) -> None:
    """An upstream 500 reaches the client as an OpenAI-style 500, costs nothing, and frees the budget it held."""
    key = await _tight_key(admin)
    body = chat_body("fail", FAILING_MODEL, max_tokens=HOLD_TOKENS, stream=stream)
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=body)
    error = assert_error_body(response, 500, "api_error")
    assert error["message"] == "mock upstream error 500"
    rows = await spend_logs(admin, key["key"])
    assert [(row["status"], row["cost_nanos"]) for row in rows] == [("error", 0)]
    await _assert_released_and_admitted(gateway, admin, key)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_upstream_timeout_is_504_and_releases_the_hold(
    gateway: GatewayServer, admin: httpx.AsyncClient, stream: bool
) -> None:
    """A deployment slower than its ``timeout`` gets a 504 timeout error, not a hang; the hold is freed."""
    key = await _tight_key(admin)
    body = chat_body("slow", SLOW_MODEL, max_tokens=HOLD_TOKENS, stream=stream)
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert_error_body(response, 504, "timeout")
    await _assert_released_and_admitted(gateway, admin, key)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_upstream_unreachable_is_502_and_releases_the_hold(
    gateway: GatewayServer, admin: httpx.AsyncClient, stream: bool
) -> None:
    """A deployment nobody listens on gets a 502 naming the upstream; the hold is freed."""
    key = await _tight_key(admin)
    async with bearer_client(gateway, key["key"]) as client:
        body = chat_body("x", DEAD_MODEL, max_tokens=HOLD_TOKENS, stream=stream)
        response = await client.post("/v1/chat/completions", json=body)
    error = assert_error_body(response, 502, "upstream_unavailable")
    assert DEAD_MODEL in error["message"]
    await _assert_released_and_admitted(gateway, admin, key)


async def test_client_disconnect_mid_stream_is_charged_and_leaves_no_hold(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A client that hangs up mid-stream is charged for what was generated (LiteLLM charged nothing), the
    record says ``cancelled``, and the rest of the hold returns to the budget."""
    key = await new_key(admin, max_budget=1, budget_limits=[{"budget_duration": "1d", "max_budget": 1}])
    body = chat_body(f"long {marker()}", DRIP_MODEL, max_tokens=DRIP_MODEL_TOKENS, stream=True)
    content_chunks = 0
    async with (
        bearer_client(gateway, key["key"]) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                content_chunks += 1
            if content_chunks == 3:
                break  # leaving the block closes the connection mid-stream

    async def cancelled_rows() -> list[dict[str, Any]]:
        return [row for row in await spend_logs(admin, key["key"]) if row["status"] == "cancelled"]

    rows = await eventually(cancelled_rows, bool, timeout_s=2.0)
    assert len(rows) == 1, "the disconnected stream wrote no cancelled spend record"
    (row,) = rows
    assert 0 < row["cost_nanos"] < DRIP_MODEL_TOKENS * FLAT_OUTPUT_NANOS_PER_TOKEN
    info = await eventually(lambda: key_info(admin, key["token"]), lambda info: window_held(info) == [0])
    assert window_held(info) == [0]
    assert info["budget_limits"][0]["spend"] == info["spend"] == row["spend"]
