"""A stream without usage is charged an upper bound (review finding 2), and a body whose object repeats a key
the hold depends on is refused (review finding 3): the gateway and the upstream must read the same request."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.helpers import assert_error_body, bearer_client, marker, new_key
from tests.api.holds.fetched_input_support import BATCHY, VISION_765, fetched_input_gateway
from tests.api.holds.support import charged
from tests.api.routes.helpers import sent_with
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayServer

BATCHY_TOKENS = 100  # 5 chunks of 20 tokens, no usage chunk


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[GatewayServer]:
    with fetched_input_gateway(tmp_path_factory.mktemp("unreported"), fake_upstream.base_url, "standard") as server:
        yield server


async def test_batchy_stream_without_usage_bug_five_chunks_of_twenty_tokens_are_not_charged_as_five(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Bug (review finding 2, batchy.py): a stream of 5 chunks of 20 words and no usage chunk was charged
    ``completion_tokens: 5`` (one per chunk). Now it is charged its streamed content bytes as tokens (a token is
    at least one byte), bounded by the output cap held: at least the 100 tokens the upstream generated."""
    key = await new_key(admin)
    body = {"model": BATCHY, "messages": [{"role": "user", "content": marker()}], "stream": True}
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    streamed = "".join(line for line in response.text.splitlines() if line.startswith("data: {"))
    assert streamed.count('"content"') == 5
    _, rows = await charged(admin, key)
    (row,) = rows
    assert BATCHY_TOKENS <= row["completion_tokens"] <= 1000, row  # content bytes, at most the 1,000 held
    assert row["status"] == "success"


@pytest.mark.parametrize(
    ("template", "param"),
    [
        (
            b'{"model": "%s", "max_tokens": 5000, "max_tokens": 1, "messages": [{"role": "user", "content": "%s"}]}',
            "max_tokens",
        ),
        (b'{"model": "%s", "n": 8, "n": 1, "messages": [{"role": "user", "content": "%s"}]}', "n"),
        (b'{"model": "other", "model": "%s", "messages": [{"role": "user", "content": "%s"}]}', "model"),
        (
            b'{"model": "%s", "stream": true, "stream": false, "messages": [{"role": "user", "content": "%s"}]}',
            "stream",
        ),
        (
            b'{"model": "%s", "\\u006dax_tokens": 5000, "max_tokens": 1,'
            b' "messages": [{"role": "user", "content": "%s"}]}',
            "max_tokens",
        ),
        (
            b'{"model": "%s", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://e.com/1.png"}}],'
            b' "content": "%s"}]}',
            "content",
        ),
    ],
    ids=["max_tokens", "n", "model", "stream", "escaped-max_tokens", "nested-content-hiding-images"],
)
async def test_repeated_key_bug_upstream_reading_the_first_value_is_refused_with_a_400_naming_the_key(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream, template: bytes, param: str
) -> None:
    """Bug (review finding 3): the gateway read the last ``max_tokens`` (1) and forwarded the client's bytes, so an
    upstream that reads the first (5000) would bill past the hold. Also a key spelled with a JSON escape, and a
    nested ``content`` whose first copy hides images from the input bound."""
    key = await new_key(admin, max_budget=1)
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post(
            "/v1/chat/completions",
            content=template % (VISION_765.encode(), word.encode()),
            headers={"content-type": "application/json"},
        )
    error = assert_error_body(response, 400, "invalid_request_error")
    assert error["param"] == param
    assert sent_with(fake_upstream, word) == []


async def test_a_key_repeated_only_in_text_or_in_different_objects_is_not_refused(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """The check must not refuse ordinary bodies: field names quoted inside text, and the same key in
    different messages."""
    key = await new_key(admin, max_budget=1)
    body = {
        "model": VISION_765,
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": 'say "max_tokens" and "model" and "image_url"'},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "again"},
        ],
    }
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
