"""UpstreamClient transport hygiene: cookies, redirects, encodings, cut-off bodies, proxies and its lifecycle."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import socket
import warnings
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from ledgergate.upstream.client import UpstreamClient
from ledgergate.upstream.errors import UpstreamTimeout, UpstreamUnavailable
from tests.api.upstream.deployments import deployment_at
from tests.api.upstream.scripted_upstream import (
    ScriptedUpstream,
    gzip_json_reply,
    http_reply,
    truncated_chunked_reply,
)
from tests.support.fake_upstream import FakeUpstream
from tests.support.timing import scaled

CHAT = orjson.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "one two three"}]})
JSON = [("content-type", "application/json")]
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def _closed_port_base() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedUpstream]:
    upstream = await ScriptedUpstream(
        {
            "/v1/cookie": http_reply("200 OK", b"{}", [*JSON, ("set-cookie", "session=tenant-a; Path=/")]),
            "/v1/redirect": http_reply("307 Temporary Redirect", b"", [("location", "/v1/cookie")]),
            "/v1/gzip": gzip_json_reply(b'{"id": "zipped"}'),
            "/v1/cut": truncated_chunked_reply(b'data: {"id": "first"}\n\n'),
            "/v1/keep": http_reply("200 OK", b"{}", JSON, keep_alive=True),
            "/v1/big-header": http_reply("200 OK", b"{}", [*JSON, ("x-trace", "t" * 20_000)]),
        }
    ).start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient(connect_timeout_s=scaled(2.0)) as upstream_client:
        yield upstream_client


@pytest.fixture
def no_env_proxies(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in (*PROXY_VARIABLES, "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch


async def test_client_never_replays_upstream_cookies(client: UpstreamClient, scripted: ScriptedUpstream) -> None:
    """A Set-Cookie from an upstream is never sent on later calls (they may be made for another tenant)."""
    for _ in range(2):
        # A host name, not an IP: cookie jars refuse cookies from IP hosts, which would hide a leak.
        reply = await client.send(deployment_at(scripted.base_url.replace("127.0.0.1", "localhost")), "/cookie", CHAT)
        assert reply.status == 200
    assert [headers.get("cookie") for _, headers in scripted.received] == [None, None]


async def test_client_send_does_not_follow_redirects(client: UpstreamClient, scripted: ScriptedUpstream) -> None:
    """A 3xx is returned as is: the body and bearer key are never re-posted to wherever Location points."""
    reply = await client.send(deployment_at(scripted.base_url), "/redirect", CHAT)
    assert reply.status == 307
    assert not reply.is_success
    assert [path for path, _ in scripted.received] == ["/v1/redirect"]


async def test_client_send_decodes_compressed_body(client: UpstreamClient, scripted: ScriptedUpstream) -> None:
    """A gzip-encoded reply is decoded: the gateway forwards bodies without the upstream's content-encoding."""
    reply = await client.send(deployment_at(scripted.base_url), "/gzip", CHAT)
    assert orjson.loads(reply.body) == {"id": "zipped"}


async def test_client_send_accepts_large_reply_headers(client: UpstreamClient, scripted: ScriptedUpstream) -> None:
    """A 20 KB header line (httpx accepted up to 100 KiB of headers) is read, not turned into a 502."""
    reply = await client.send(deployment_at(scripted.base_url), "/big-header", CHAT)
    assert reply.status == 200


async def test_client_stream_cut_off_mid_body_is_unavailable(
    client: UpstreamClient, scripted: ScriptedUpstream
) -> None:
    """A stream whose connection drops before its last chunk yields what arrived, then UpstreamUnavailable."""
    received: list[bytes] = []
    async with await client.stream(deployment_at(scripted.base_url), "/cut", CHAT) as stream:
        with pytest.raises(UpstreamUnavailable) as caught:
            async for chunk in stream.chunks():
                received.append(chunk)
    assert b"".join(received) == b'data: {"id": "first"}\n\n'
    assert caught.value.status_code == 502


async def test_client_extra_header_replaces_authorization_in_any_case(
    client: UpstreamClient, scripted: ScriptedUpstream
) -> None:
    """extra_headers override the bearer key case-insensitively: exactly one Authorization header is sent."""
    deployment = deployment_at(scripted.base_url, extra_headers={"Authorization": "Token other", "API-Key": "k"})
    await client.send(deployment, "/cookie", CHAT)
    [(_, headers)] = scripted.received
    assert headers["authorization"] == "Token other"
    assert headers["api-key"] == "k"
    assert headers["content-type"] == "application/json"


async def test_client_connect_timeout_is_upstream_timeout() -> None:
    """An upstream that never completes the TCP handshake raises UpstreamTimeout (504) after connect_timeout_s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        # Filling the accept backlog makes the kernel drop further SYNs, so the next connect hangs.
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            async with UpstreamClient(connect_timeout_s=0.2) as upstream_client:
                with pytest.raises(UpstreamTimeout) as caught:
                    await upstream_client.send(deployment_at(f"http://127.0.0.1:{port}/v1"), "/chat/completions", CHAT)
        finally:
            for filler in fillers:
                filler.close()
    assert caught.value.status_code == 504


@pytest.mark.parametrize("api_base", ["http://upstream.invalid/v1", "not a url", "ftp://127.0.0.1/v1"])
async def test_client_unresolvable_or_invalid_api_base_is_unavailable(client: UpstreamClient, api_base: str) -> None:
    """DNS failures and malformed api_base values raise UpstreamUnavailable (502), not a raw aiohttp error."""
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.send(deployment_at(api_base), "/chat/completions", CHAT)
    assert caught.value.status_code == 502


async def test_client_uses_proxy_from_environment(
    no_env_proxies: pytest.MonkeyPatch, fake_upstream: FakeUpstream
) -> None:
    """HTTP_PROXY (with credentials) is honoured as httpx's trust_env did: the request goes through the proxy."""
    fake_upstream.reset()
    no_env_proxies.setenv("HTTP_PROXY", f"http://gw%40corp:p%3Ass@127.0.0.1:{fake_upstream.port}")
    # Nothing listens at the api_base itself: only the proxy (here the fake upstream) can answer.
    async with UpstreamClient(connect_timeout_s=scaled(2.0)) as upstream_client:
        reply = await upstream_client.send(deployment_at(_closed_port_base()), "/chat/completions", CHAT)
    assert reply.status == 200
    [received] = fake_upstream.received()
    assert received["path"] == "/v1/chat/completions"
    assert received["headers"]["proxy-authorization"] == "Basic " + base64.b64encode(b"gw@corp:p:ss").decode()
    assert received["headers"]["authorization"] == "Bearer sk-upstream"


async def test_client_no_proxy_bypasses_environment_proxy(
    no_env_proxies: pytest.MonkeyPatch, fake_upstream: FakeUpstream
) -> None:
    """A host listed in NO_PROXY is reached directly even when HTTP_PROXY is set."""
    no_env_proxies.setenv("HTTP_PROXY", _closed_port_base().removesuffix("/v1"))
    no_env_proxies.setenv("NO_PROXY", "127.0.0.1")
    async with UpstreamClient(connect_timeout_s=scaled(2.0)) as upstream_client:
        reply = await upstream_client.send(deployment_at(fake_upstream.base_url), "/chat/completions", CHAT)
    assert reply.status == 200


async def test_client_abandoned_stream_connection_is_not_reused(
    client: UpstreamClient, fake_upstream: FakeUpstream
) -> None:
    """Closing a half-read stream discards its connection: later calls never read the stream's leftover bytes."""
    slow = deployment_at(fake_upstream.base_url, extra_headers={"x-mock-chunk-delay-ms": "30"})
    body = orjson.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    for _ in range(3):
        async with await client.stream(slow, "/chat/completions", body) as stream:
            async for _chunk in stream.chunks():
                break
        replies = await asyncio.gather(
            *(client.send(deployment_at(fake_upstream.base_url), "/chat/completions", CHAT) for _ in range(4))
        )
        assert all(orjson.loads(reply.body)["object"] == "chat.completion" for reply in replies)


async def test_client_aclose_closes_every_connection_and_is_final(scripted: ScriptedUpstream) -> None:
    """aclose() closes all pooled connections and leaks nothing (no ResourceWarning); the client is then done."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        upstream_client = UpstreamClient(connect_timeout_s=scaled(2.0))
        deployment = deployment_at(scripted.base_url)
        await asyncio.gather(*(upstream_client.send(deployment, "/keep", CHAT) for _ in range(4)))
        assert scripted.open_connections >= 1
        await upstream_client.aclose()
        await upstream_client.aclose()
        for _ in range(100):
            if scripted.open_connections == 0:
                break
            await asyncio.sleep(0.01)
        assert scripted.open_connections == 0
        with pytest.raises(RuntimeError, match="closed"):
            await upstream_client.send(deployment, "/keep", CHAT)
        del upstream_client
        gc.collect()
    assert [str(warning.message) for warning in caught if issubclass(warning.category, ResourceWarning)] == []


def test_client_built_outside_event_loop_opens_session_in_running_loop(fake_upstream: FakeUpstream) -> None:
    """A client constructed with no running loop (as at import or config time) works in the loop that uses it."""
    upstream_client = UpstreamClient(connect_timeout_s=scaled(2.0))

    async def use() -> int:
        async with upstream_client:
            return (await upstream_client.send(deployment_at(fake_upstream.base_url), "/chat/completions", CHAT)).status

    assert asyncio.run(use()) == 200
