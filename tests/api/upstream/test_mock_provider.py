"""The mock provider's deterministic contract, which gateway tests assert against."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from ledgergate.upstream.mock_provider import create_mock_provider_app
from ledgergate.upstream.sse import StreamTracker

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two three"}]


@pytest.fixture
async def mock() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_mock_provider_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as http:
        yield http


def _events(body: bytes) -> list[Any]:
    lines = [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]
    return [line if line == b"[DONE]" else orjson.loads(line) for line in lines]


async def test_mock_chat_counts_words_plus_three_per_message(mock: httpx.AsyncClient) -> None:
    """Prompt tokens = words + 3 per message; completion = min(max_tokens, 16) per choice, times n."""
    reply = await mock.post("/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "max_tokens": 7, "n": 2})
    body = reply.json()
    assert body["usage"]["prompt_tokens"] == 5 + 6
    assert body["usage"]["completion_tokens"] == 14
    assert [c["message"]["content"] for c in body["choices"]] == ["This is a mock response. This is"] * 2
    assert body["choices"][0]["finish_reason"] == "length"


async def test_mock_chat_stream_sends_usage_only_when_requested(mock: httpx.AsyncClient) -> None:
    """One chunk per token, then a usage-only chunk iff stream_options.include_usage, then [DONE]."""
    request = {"model": "m", "messages": MESSAGES, "stream": True, "max_tokens": 3}
    plain = _events((await mock.post("/v1/chat/completions", json=request)).content)
    assert len(plain) == 4
    assert plain[-1] == b"[DONE]"
    assert "".join(e["choices"][0]["delta"]["content"] for e in plain[:-1]) == "This is a"
    with_usage = {**request, "stream_options": {"include_usage": True}}
    events = _events((await mock.post("/v1/chat/completions", json=with_usage)).content)
    assert len(events) == 5
    assert events[-2]["choices"] == []
    assert events[-2]["usage"]["completion_tokens"] == 3


async def test_mock_chat_honours_control_headers(mock: httpx.AsyncClient) -> None:
    """x-mock-completion-tokens overrides the count; x-mock-no-usage drops usage; x-mock-status errors."""
    request = {"model": "m", "messages": MESSAGES}
    headers = {"x-mock-completion-tokens": "40"}
    reply = await mock.post("/v1/chat/completions", json=request, headers=headers)
    assert reply.json()["usage"]["completion_tokens"] == 40
    reply = await mock.post("/v1/chat/completions", json=request, headers={"x-mock-no-usage": "1"})
    assert "usage" not in reply.json()
    reply = await mock.post("/v1/chat/completions", json=request, headers={"x-mock-status": "503"})
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "503"


async def test_mock_records_and_resets_received_requests(mock: httpx.AsyncClient) -> None:
    """Every LLM request is recorded with path, headers and JSON body until /mock/reset."""
    await mock.post("/v1/embeddings", json={"model": "e", "input": "a b c"}, headers={"x-tag": "t"})
    [received] = (await mock.get("/mock/received")).json()
    assert received["path"] == "/v1/embeddings"
    assert received["headers"]["x-tag"] == "t"
    assert received["json"] == {"model": "e", "input": "a b c"}
    await mock.post("/mock/reset")
    assert (await mock.get("/mock/received")).json() == []


async def test_mock_embeddings_support_base64(mock: httpx.AsyncClient) -> None:
    """Embeddings usage counts words; base64 encoding (the openai SDK default) returns strings."""
    request = {"model": "e", "input": ["a b", "c"], "encoding_format": "base64"}
    body = (await mock.post("/v1/embeddings", json=request)).json()
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert all(isinstance(item["embedding"], str) for item in body["data"])


async def test_mock_models_lists_models(mock: httpx.AsyncClient) -> None:
    """GET /v1/models returns an OpenAI model list."""
    body = (await mock.get("/v1/models")).json()
    assert body["object"] == "list"
    assert {"mock-gpt", "mock-embedding"} <= {model["id"] for model in body["data"]}


async def test_mock_anthropic_messages_report_usage(mock: httpx.AsyncClient) -> None:
    """/v1/messages reports input/output tokens, in the reply and in message_start/message_delta events."""
    request = {"model": "c", "system": "be brief", "messages": MESSAGES[1:], "max_tokens": 2}
    body = (await mock.post("/v1/messages", json=request)).json()
    assert body["usage"] == {"input_tokens": 2 + 3 + 3, "output_tokens": 2}
    assert body["content"][0]["text"] == "This is"
    events = _events((await mock.post("/v1/messages", json={**request, "stream": True})).content)
    assert events[0]["message"]["usage"]["input_tokens"] == 8
    assert events[-2]["usage"] == {"output_tokens": 2}
    assert events[-1] == {"type": "message_stop"}


async def test_mock_stream_is_tracked_exactly(mock: httpx.AsyncClient) -> None:
    """The tracker reads the mock's own stream: usage found, content chunks = completion tokens x n."""
    request = {
        "model": "m",
        "messages": MESSAGES,
        "stream": True,
        "n": 2,
        "stream_options": {"include_usage": True},
    }
    tracker = StreamTracker(strip_usage_chunk=True)
    tracker.feed((await mock.post("/v1/chat/completions", json=request)).content)
    tracker.finish()
    assert tracker.usage is not None
    assert tracker.usage.completion_tokens == 32
    assert tracker.content_chunks == 32
