"""UpstreamClient's keep-alive pool: reuse, idle connections the server closed, no re-sent POSTs, the
connection cap, expiry, abandoned streams, back-pressure and the request head it writes."""

from __future__ import annotations

import asyncio
import socket
import threading

import orjson
import pytest

from ledgergate.upstream import client as client_module
from ledgergate.upstream.client import UpstreamClient
from ledgergate.upstream.errors import UpstreamTimeout, UpstreamUnavailable
from ledgergate.upstream.http1 import STREAM_PAUSE_BYTES, Reply
from tests.api.upstream.deployments import deployment_at
from tests.api.upstream.raw_upstream import (
    CHUNKED_HEAD,
    LAST_CHUNK,
    RawConnection,
    RawUpstream,
    chunk,
    reply,
    serve_forever,
)
from tests.support.timing import scaled

CHAT = orjson.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]})


async def test_sequential_requests_reuse_one_keepalive_connection() -> None:
    async with RawUpstream(serve_forever) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        for _ in range(3):
            assert (await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)).status == 200
    assert (upstream.connections, len(upstream.requests)) == (1, 3)


async def test_request_head_carries_host_port_prefix_length_and_one_authorization() -> None:
    async with RawUpstream(serve_forever) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
        extra = {"AUTHORIZATION": "Token other", "x-tenant": "t1"}
        await client.send(deployment_at(upstream.base_url, extra_headers=extra), "/chat/completions", CHAT)
        protocol = {"x-api-key": "sk-ant", "anthropic-version": "2023-06-01"}
        await client.send(deployment_at(upstream.base_url), "/messages", CHAT, protocol)
    default, overridden, anthropic = upstream.requests
    assert default.request_line == "POST /v1/chat/completions HTTP/1.1"
    assert default.header("host") == [f"127.0.0.1:{upstream.port}"]
    assert default.header("user-agent") == ["ledgergate"]
    assert default.header("accept-encoding") == ["gzip, deflate"]
    assert default.header("content-type") == ["application/json"]
    assert default.header("content-length") == [str(len(CHAT))]
    assert default.header("authorization") == ["Bearer sk-upstream"]
    assert default.body == CHAT
    assert (overridden.header("authorization"), overridden.header("x-tenant")) == (["Token other"], ["t1"])
    assert anthropic.request_line == "POST /v1/messages HTTP/1.1"
    assert (anthropic.header("x-api-key"), anthropic.header("authorization")) == (["sk-ant"], [])


async def test_header_value_with_line_break_is_refused_not_sent() -> None:
    """A header value cannot smuggle a second header or request into the upstream connection."""
    async with RawUpstream(serve_forever) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        deployment = deployment_at(upstream.base_url, extra_headers={"x-tenant": "t1\r\nx-injected: yes"})
        with pytest.raises(UpstreamUnavailable):
            await client.send(deployment, "/chat/completions", CHAT)
    assert upstream.requests == []


def _closing_server(replies: int) -> tuple[socket.socket, threading.Event, threading.Thread, list[bytes]]:
    """A blocking server in a thread: each connection gets one keep-alive reply, then the server closes it
    and sets the event. Blocking the test's event loop on that event leaves the FIN unread by the loop."""
    listener = socket.create_server(("127.0.0.1", 0))
    closed = threading.Event()
    received: list[bytes] = []

    def serve() -> None:
        for _ in range(replies):
            conn, _ = listener.accept()
            with conn:
                received.append(conn.recv(65536))
                conn.sendall(reply())
            closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, closed, thread, received


async def test_idle_connection_the_server_closed_is_never_used() -> None:
    """The FIN of an idle connection is noticed before writing even when the event loop has not read it yet."""
    listener, closed, thread, received = _closing_server(replies=3)
    api_base = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    try:
        async with UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
            for _ in range(3):
                closed.clear()
                assert (await client.send(deployment_at(api_base), "/chat/completions", CHAT)).status == 200
                assert closed.wait(5.0)  # blocks the loop: the FIN waits in the kernel, unseen by asyncio
    finally:
        thread.join(5.0)
        listener.close()
    assert len(received) == 3


async def test_post_dropped_after_it_was_sent_is_unavailable_and_never_resent() -> None:
    """A request the upstream may have acted on is not retried, not even on a fresh connection (double spend)."""

    async def script(connection: RawConnection) -> None:
        await connection.read_request()
        await connection.send(reply())
        await connection.read_request()  # the second request arrives, then the connection drops unanswered

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        assert (await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)).status == 200
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
        await asyncio.sleep(scaled(0.05))  # give a (wrong) retry the chance to reach the server
    assert caught.value.status_code == 502
    assert (upstream.connections, len(upstream.requests)) == (1, 2)


async def test_connection_cap_queues_requests_for_a_free_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_CONNECTIONS", 2)
    release = asyncio.Event()

    async def script(connection: RawConnection) -> None:
        while await connection.read_request() is not None:
            await release.wait()
            await connection.send(reply())

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(5.0)) as client:
        calls = [asyncio.create_task(client.send(deployment_at(upstream.base_url), "/c", CHAT)) for _ in range(6)]
        while len(upstream.requests) < 2:
            await asyncio.sleep(0.01)
        release.set()
        replies = await asyncio.gather(*calls)
    assert [result.status for result in replies] == [200] * 6
    assert upstream.max_open_connections == 2


async def test_waiting_for_a_slot_longer_than_the_connect_timeout_is_upstream_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "MAX_CONNECTIONS", 1)

    async def script(connection: RawConnection) -> None:
        await connection.read_request()
        await connection.send(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        await connection.client_closed()

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=0.2) as client:
        stream = await client.stream(deployment_at(upstream.base_url), "/c", CHAT)
        async with stream:  # holds the only connection
            with pytest.raises(UpstreamTimeout) as caught:
                await client.send(deployment_at(upstream.base_url), "/c", CHAT)
    assert caught.value.status_code == 504
    assert len(upstream.requests) == 1


async def test_idle_connection_past_keepalive_expiry_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "KEEPALIVE_EXPIRY_S", 0.05)
    client_gone = asyncio.Event()

    async def script(connection: RawConnection) -> None:
        await connection.read_request()
        await connection.send(reply())
        if await connection.client_closed():
            client_gone.set()

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        await client.send(deployment_at(upstream.base_url), "/c", CHAT)
        # No request comes to notice the expiry: the client's own sweep closes the connection.
        await asyncio.wait_for(client_gone.wait(), scaled(5.0))
        assert (await client.send(deployment_at(upstream.base_url), "/c", CHAT)).status == 200
    assert upstream.connections == 2


async def test_partly_read_stream_closes_its_connection_and_fully_read_one_returns_it() -> None:
    full = CHUNKED_HEAD + chunk(b"data: 1\n\n") + chunk(b"data: 2\n\n") + LAST_CHUNK
    closed_by_client = asyncio.Event()

    async def script(connection: RawConnection) -> None:
        while await connection.read_request() is not None:
            if len(upstream.requests) != 3:
                await connection.send(full)
                continue
            await connection.send(CHUNKED_HEAD + chunk(b"data: 1\n\n"))  # and the rest never comes
            if await connection.client_closed():
                closed_by_client.set()
            return

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        for _ in range(2):
            async with await client.stream(deployment_at(upstream.base_url), "/c", CHAT) as stream:
                assert b"".join([data async for data in stream.chunks()]) == b"data: 1\n\ndata: 2\n\n"
        assert upstream.connections == 1
        stream = await client.stream(deployment_at(upstream.base_url), "/c", CHAT)
        async with stream:
            async for _data in stream.chunks():
                break
        await asyncio.wait_for(closed_by_client.wait(), scaled(5.0))
        stream = await client.stream(deployment_at(upstream.base_url), "/c", CHAT)
        async with stream:
            assert b"".join([data async for data in stream.chunks()]) == b"data: 1\n\ndata: 2\n\n"
    assert upstream.connections == 2


async def test_cancelled_call_closes_its_connection() -> None:
    async def script(connection: RawConnection) -> None:
        if await connection.read_request() is not None:
            await connection.client_closed()

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        call = asyncio.create_task(client.send(deployment_at(upstream.base_url), "/c", CHAT))
        while not upstream.requests:
            await asyncio.sleep(0.01)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        while upstream.open_connections:
            await asyncio.sleep(0.01)


async def test_unread_stream_stops_reading_the_socket_at_the_buffer_limit() -> None:
    """A consumer that does not read makes the upstream's writes back up instead of the gateway's memory grow."""
    events = b"".join(f"data: {n:010d}\n\n".encode() for n in range(16 * 1024 * 1024 // 18))
    server = asyncio.get_running_loop().create_future()

    async def script(connection: RawConnection) -> None:
        await connection.read_request()
        server.set_result(connection)
        pieces = (chunk(events[i : i + 65536]) for i in range(0, len(events), 65536))
        await connection.send(CHUNKED_HEAD + b"".join(pieces) + LAST_CHUNK)

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        stream = await client.stream(deployment_at(upstream.base_url), "/c", CHAT)
        async with stream:
            reader = stream.chunks()
            received = [await anext(reader)]
            for _ in range(20):  # ample time to read all 16 MiB if nothing held the client back
                await asyncio.sleep(0.01)
            source = stream._response
            assert isinstance(source, Reply)
            assert source.unconsumed_bytes <= STREAM_PAUSE_BYTES + 256 * 1024
            assert (await server).writer.transport.get_write_buffer_size() > 0
            received += [data async for data in reader]
    assert b"".join(received) == events
