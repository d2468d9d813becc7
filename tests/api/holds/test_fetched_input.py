"""Holds bound input the provider fetches or expands itself (images, files, audio, stored state, server-side
tools), against a fake upstream that bills each image part 765 tokens and each file part 1,000 (adversarial
review of the issue-12 fixes, finding 1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error_body, bearer_client, marker, new_key
from tests.api.holds.fetched_input_support import (
    CLAUDE_VISION,
    IMAGE_TOKENS,
    INPUT_NANOS_PER_TOKEN,
    OUTPUT_CAP_TOKENS,
    OUTPUT_NANOS_PER_TOKEN,
    VISION_765,
    VISION_DEFAULT,
    fetched_input_gateway,
    https_images,
)
from tests.api.holds.support import charged
from tests.api.routes.helpers import sent_with
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayServer

REVIEW_BUDGET_USD = 0.002  # the strict key the review took to $0.0154 with one request


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[GatewayServer]:
    with fetched_input_gateway(tmp_path_factory.mktemp("fetched-input"), fake_upstream.base_url, "strict") as server:
        yield server


def _chat(word: str, model: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": [{"type": "text", "text": word}, *parts]}]}


async def test_twenty_https_image_url_parts_in_a_1794_byte_body_cannot_take_a_strict_key_past_its_budget(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """Bug (review finding 1, img.py): 20 ``image_url`` parts with https URLs, billed 765 input tokens each, were
    held at the body's 1,794 bytes: one request took a $0.002 strict key to $0.0154. Now each image part is held at
    the deployment's per-image bound (default: OpenAI's documented worst case), so the request is refused."""
    key = await new_key(admin, max_budget=REVIEW_BUDGET_USD)
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        responses = [await client.post("/v1/chat/completions", json=_chat(word, VISION_DEFAULT, https_images(20)))]
    assert [response.status_code for response in responses] == [429]
    assert sent_with(fake_upstream, word) == []
    spend_nanos, _ = await charged(admin, key)
    assert spend_nanos == 0


async def test_image_parts_held_at_a_configured_per_image_bound_keep_strict_spend_within_the_budget(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """With ``max_input_tokens_per_image: 765`` (the upstream's real price per image) the requests that fit are
    served, each held at bytes + 20 x 765, and strict spend never passes the budget."""
    real_cost_nanos = (20 * IMAGE_TOKENS + 1 + 3) * INPUT_NANOS_PER_TOKEN + OUTPUT_CAP_TOKENS * OUTPUT_NANOS_PER_TOKEN
    budget_nanos = 2 * real_cost_nanos + real_cost_nanos // 2
    key = await new_key(admin, max_budget=budget_nanos / 1e9)
    word = marker()
    statuses = []
    async with bearer_client(gateway, key["key"]) as client:
        for _ in range(4):
            response = await client.post("/v1/chat/completions", json=_chat(word, VISION_765, https_images(20)))
            statuses.append(response.status_code)
    assert statuses == [200, 200, 429, 429]
    spend_nanos, rows = await charged(admin, key)
    assert [row["prompt_tokens"] for row in rows] == [20 * IMAGE_TOKENS + 4] * 2
    assert spend_nanos == 2 * real_cost_nanos <= budget_nanos


async def test_a_tiny_base64_data_url_image_is_held_at_the_per_image_bound_not_its_bytes(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """A 1x1 PNG is ~90 bytes of base64 but is billed as a whole image (765 tokens here; 8,500 on gpt-4o-mini):
    inline image bytes do not bound image tokens, so data: URLs are held like remote images."""
    key = await new_key(admin, max_budget=(400 * INPUT_NANOS_PER_TOKEN + 10 * OUTPUT_NANOS_PER_TOKEN) / 1e9)
    word = marker()
    tiny = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"}}
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=_chat(word, VISION_765, [tiny]))
    assert response.status_code == 429, response.text
    assert sent_with(fake_upstream, word) == []


@pytest.mark.parametrize(
    ("route", "model", "body", "param"),
    [
        (
            "/v1/chat/completions",
            VISION_DEFAULT,
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]},
            "messages[0].content[0]",
        ),
        (
            "/v1/chat/completions",
            VISION_DEFAULT,
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklG"}}]}]},
            "messages[0].content[0]",
        ),
        (
            "/v1/responses",
            VISION_DEFAULT,
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://e.com/a.pdf"}]}]},
            "input[0].content[0]",
        ),
        ("/v1/responses", VISION_DEFAULT, {"input": "go on", "previous_response_id": "resp_1"}, "previous_response_id"),
    ],
    ids=["chat-file-id", "chat-input-audio", "responses-input-file-url", "responses-previous-response-id"],
)
async def test_a_part_the_provider_expands_without_a_known_context_window_is_a_400_naming_it(
    gateway: GatewayServer,
    admin: httpx.AsyncClient,
    fake_upstream: FakeUpstream,
    route: str,
    model: str,
    body: dict[str, Any],
    param: str,
) -> None:
    """Files, audio and stored state have no per-part bound; without ``max_input_tokens`` the request cannot be
    held at a real bound: 400 naming the part, nothing forwarded or held."""
    key = await new_key(admin, max_budget=1)
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post(route, json={"model": model, "user": word, **body})
    error = assert_error_body(response, 400, "invalid_request_error")
    assert error["param"] == param
    assert "max_input_tokens" in error["message"]
    assert sent_with(fake_upstream, word) == []


async def test_a_file_part_is_held_at_the_context_window_when_the_deployment_knows_it(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """With ``max_input_tokens`` the file part is held at the whole context window: a strict key that cannot
    pay for a full window is refused (429), one that can is served and charged what the upstream reports."""
    part = {"type": "file", "file": {"file_id": "file-abc"}}
    word = marker()
    small = await new_key(admin, max_budget=REVIEW_BUDGET_USD)
    large = await new_key(admin, max_budget=1)
    async with bearer_client(gateway, small["key"]) as client:
        refused = await client.post("/v1/chat/completions", json=_chat(word, VISION_765, [part]))
    async with bearer_client(gateway, large["key"]) as client:
        served = await client.post("/v1/chat/completions", json=_chat(word, VISION_765, [part]))
    assert (refused.status_code, served.status_code) == (429, 200)
    assert len(sent_with(fake_upstream, word)) == 1
    _, rows = await charged(admin, large)
    assert [row["prompt_tokens"] for row in rows] == [1_000 + 1 + 3]


async def test_anthropic_image_with_a_url_source_is_held_per_image(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://e.com/a.png"}}
    key = await new_key(admin, max_budget=REVIEW_BUDGET_USD)
    word = marker()
    body = {
        "model": CLAUDE_VISION,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": [{"type": "text", "text": word}, image]}],
    }
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/messages", json=body)
    assert response.status_code == 429, response.text  # 48,169 tokens held for the image: more than $0.002
    assert sent_with(fake_upstream, word) == []


@pytest.mark.parametrize(
    ("route", "extra", "param"),
    [
        ("/v1/responses", {"input": "news?", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            "/v1/responses",
            {"input": "find", "tools": [{"type": "file_search", "vector_store_ids": ["v"]}]},
            "tools[0].type",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "news?"}], "web_search_options": {}},
            "web_search_options",
        ),
        (
            "/v1/chat/completions",
            {
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}, {"type": "mcp"}],
            },
            "tools[1].type",
        ),
    ],
    ids=["responses-web-search", "responses-file-search", "chat-web-search-options", "chat-mcp-after-function"],
)
async def test_server_side_tools_are_a_400_naming_the_tool(
    gateway: GatewayServer,
    admin: httpx.AsyncClient,
    fake_upstream: FakeUpstream,
    route: str,
    extra: dict[str, Any],
    param: str,
) -> None:
    """Server-side tools run extra model turns and paid calls the gateway cannot bound before forwarding."""
    key = await new_key(admin, max_budget=1)
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post(route, json={"model": VISION_765, "user": word, **extra})
    error = assert_error_body(response, 400, "invalid_request_error")
    assert error["param"] == param
    assert sent_with(fake_upstream, word) == []


@pytest.mark.parametrize("depth", [300, 1000])
async def test_a_deeply_nested_body_bug_500_when_the_cap_was_rewritten_is_a_400(
    gateway: GatewayServer, admin: httpx.AsyncClient, depth: int
) -> None:
    """Bug found attacking this fix: orjson reads 1,000 levels but writes only 254, so a body 300 deep whose cap
    the gateway rewrites was a 500 after its hold was placed (and 1,000 deep would break the standard parser of the
    duplicate-key check). Now a 400 naming ``body`` before anything is held."""
    key = await new_key(admin, max_budget=1)
    deep = b"[" * depth + b"]" * depth
    body = (
        b'{"model": "'
        + VISION_765.encode()
        + b'", "messages": [{"role": "user", "content": [{"type": "image_url"}]}], "x": '
        + deep
        + b"}"
    )
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    error = assert_error_body(response, 400, "invalid_request_error")
    assert error["param"] == "body"
