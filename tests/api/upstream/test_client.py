"""UpstreamClient against the mock provider over real loopback HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import orjson
import pytest

from ledgergate.domain.pricing import Usage
from ledgergate.upstream.client import UpstreamClient
from ledgergate.upstream.errors import (
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
    openai_error_body,
)
from ledgergate.upstream.sse import StreamTracker
from ledgergate.upstream.usage import usage_from_response
from tests.api.upstream.deployments import deployment_at
from tests.support.fake_upstream import FakeUpstream
from tests.support.timing import scaled

CHAT = orjson.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "one two three"}]})


def _stream_body(**extra: object) -> bytes:
    body = {"model": "mock-gpt", "messages": [{"role": "user", "content": "one two three"}], "stream": True}
    return orjson.dumps({**body, **extra})


def _closed_port_base() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient(connect_timeout_s=scaled(2.0)) as upstream_client:
        yield upstream_client


async def test_client_send_returns_reply_and_sends_auth_and_extra_headers(
    client: UpstreamClient, fake_upstream: FakeUpstream
) -> None:
    """A 2xx reply comes back whole; bearer key, JSON content type and extra headers reach the upstream."""
    fake_upstream.reset()
    deployment = deployment_at(fake_upstream.base_url, extra_headers={"x-team": "blue"})
    reply = await client.send(deployment, "/chat/completions", CHAT)
    assert reply.status == 200
    assert reply.is_success
    assert reply.content_type.startswith("application/json")
    assert usage_from_response(orjson.loads(reply.body)) == Usage(prompt_tokens=6, completion_tokens=16)
    [received] = fake_upstream.received()
    assert received["path"] == "/v1/chat/completions"
    assert received["headers"]["authorization"] == "Bearer sk-upstream"
    assert received["headers"]["content-type"] == "application/json"
    assert received["headers"]["x-team"] == "blue"
    assert received["json"] == orjson.loads(CHAT)


async def test_client_send_omits_auth_without_api_key(client: UpstreamClient, fake_upstream: FakeUpstream) -> None:
    """A deployment without an api_key sends no Authorization header."""
    fake_upstream.reset()
    body = orjson.dumps({"model": "mock-embedding", "input": ["a b", "c"]})
    reply = await client.send(deployment_at(fake_upstream.base_url, api_key=None), "/embeddings", body)
    assert usage_from_response(orjson.loads(reply.body)) == Usage(prompt_tokens=3)
    assert "authorization" not in fake_upstream.received()[0]["headers"]


async def test_client_send_returns_upstream_error_status(client: UpstreamClient, fake_upstream: FakeUpstream) -> None:
    """A 500 from the upstream is returned (not raised) and normalises to its OpenAI error body."""
    deployment = deployment_at(fake_upstream.base_url, extra_headers={"x-mock-status": "500"})
    reply = await client.send(deployment, "/chat/completions", CHAT)
    assert reply.status == 500
    assert not reply.is_success
    error = orjson.loads(openai_error_body(reply))["error"]
    assert error["message"] == "mock upstream error 500"
    assert error["code"] == "500"


async def test_client_send_times_out(client: UpstreamClient, fake_upstream: FakeUpstream) -> None:
    """An upstream slower than the deployment's timeout raises UpstreamTimeout (504)."""
    deployment = deployment_at(fake_upstream.base_url, timeout_s=0.2, extra_headers={"x-mock-latency-ms": "1000"})
    with pytest.raises(UpstreamTimeout) as caught:
        await client.send(deployment, "/chat/completions", CHAT)
    assert caught.value.status_code == 504


async def test_client_send_connection_refused_is_unavailable(client: UpstreamClient) -> None:
    """Nothing listening on the port raises UpstreamUnavailable (502)."""
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.send(deployment_at(_closed_port_base()), "/chat/completions", CHAT)
    assert caught.value.status_code == 502


async def test_client_stream_yields_sse_and_usage(client: UpstreamClient, fake_upstream: FakeUpstream) -> None:
    """A stream yields the upstream SSE bytes; with include_usage the tracker finds the final usage."""
    body = _stream_body(max_tokens=4, stream_options={"include_usage": True})
    tracker = StreamTracker(strip_usage_chunk=True)
    forwarded = b""
    async with await client.stream(deployment_at(fake_upstream.base_url), "/chat/completions", body) as stream:
        assert stream.status == 200
        assert stream.content_type.startswith("text/event-stream")
        async for chunk in stream.chunks():
            forwarded += tracker.feed(chunk)
    forwarded += tracker.finish()
    assert tracker.done_seen
    assert tracker.usage == Usage(prompt_tokens=6, completion_tokens=4)
    assert tracker.content_chunks == 4
    assert forwarded.count(b"data: ") == 4


async def test_client_stream_delivers_chunks_as_they_arrive(
    client: UpstreamClient, fake_upstream: FakeUpstream
) -> None:
    """The first chunk arrives long before a slowly generated stream ends (no whole-body buffering)."""
    delay_s = scaled(0.15)  # between chunks; scaled so that a stalled client loop does not merge them
    headers = {"x-mock-chunk-delay-ms": str(round(delay_s * 1000))}
    deployment = deployment_at(fake_upstream.base_url, extra_headers=headers)
    started = time.monotonic()
    arrivals: list[float] = []
    async with await client.stream(deployment, "/chat/completions", _stream_body(max_tokens=5)) as stream:
        async for _chunk in stream.chunks():
            arrivals.append(time.monotonic() - started)
    assert arrivals[-1] >= 3 * delay_s
    assert arrivals[0] < arrivals[-1] - 2 * delay_s


async def test_client_stream_raises_upstream_http_error(client: UpstreamClient, fake_upstream: FakeUpstream) -> None:
    """A non-2xx streaming reply is read whole and raised with its status and message."""
    deployment = deployment_at(fake_upstream.base_url, extra_headers={"x-mock-status": "429"})
    with pytest.raises(UpstreamHTTPError) as caught:
        await client.stream(deployment, "/chat/completions", _stream_body())
    assert caught.value.status_code == 429
    assert caught.value.to_openai_error()["error"]["message"] == "mock upstream error 429"


async def test_client_stream_stall_times_out(client: UpstreamClient, fake_upstream: FakeUpstream) -> None:
    """A gap between chunks longer than the deployment's timeout raises UpstreamTimeout from chunks()."""
    headers = {"x-mock-chunk-delay-ms": "1000"}
    deployment = deployment_at(fake_upstream.base_url, timeout_s=0.2, extra_headers=headers)
    async with await client.stream(deployment, "/chat/completions", _stream_body(max_tokens=3)) as stream:
        with pytest.raises(UpstreamTimeout):
            async for _chunk in stream.chunks():
                pass


async def test_client_stream_connection_refused_is_unavailable(client: UpstreamClient) -> None:
    """Opening a stream to a closed port raises UpstreamUnavailable."""
    with pytest.raises(UpstreamUnavailable):
        await client.stream(deployment_at(_closed_port_base()), "/chat/completions", _stream_body())
