"""UpstreamClient's own HTTP/1.1 client reading replies byte for byte: framing, encodings, interim replies,
oversized heads, stalls and connections dropped mid-reply, against a raw loopback TCP server."""

from __future__ import annotations

import asyncio
import socket
import struct
import zlib

import orjson
import pytest

from ledgergate.upstream.client import UpstreamClient
from ledgergate.upstream.errors import UpstreamHTTPError, UpstreamTimeout, UpstreamUnavailable
from ledgergate.upstream.http1 import MAX_HEAD_BYTES
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


async def _answer_once(answer: bytes, connection: RawConnection) -> None:
    await connection.read_request()
    await connection.send(answer)


async def test_chunked_reply_is_read_whole_by_send() -> None:
    async def script(connection: RawConnection) -> None:
        await _answer_once(CHUNKED_HEAD + chunk(b'{"id":') + chunk(b' "chunked"}') + LAST_CHUNK, connection)

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        result = await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
    assert (result.status, result.body, result.content_type) == (200, b'{"id": "chunked"}', "text/event-stream")


async def test_stream_yields_each_chunk_before_the_next_is_sent() -> None:
    """Chunks are passed on as they arrive: the second is only sent once the client has the first."""
    first_seen = asyncio.Event()

    async def script(connection: RawConnection) -> None:
        await _answer_once(CHUNKED_HEAD + chunk(b"data: 1\n\n"), connection)
        await first_seen.wait()
        await connection.send(chunk(b"data: 2\n\n") + LAST_CHUNK)

    received: list[bytes] = []
    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        stream = await client.stream(deployment_at(upstream.base_url), "/chat/completions", CHAT)
        async with stream:
            assert stream.content_type == "text/event-stream"
            async for data in stream.chunks():
                received.append(data)
                first_seen.set()
    assert received == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_gzip_stream_is_decoded_incrementally() -> None:
    """A gzip-encoded SSE stream yields decoded events while the compressed stream is still arriving."""
    events = [f'data: {{"n": {n}}}\n\n'.encode() for n in range(50)]
    compressor = zlib.compressobj(wbits=31)
    pieces = [compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH) for event in events]
    pieces.append(compressor.flush())
    first_seen = asyncio.Event()
    head = CHUNKED_HEAD.replace(b"\r\n\r\n", b"\r\ncontent-encoding: gzip\r\n\r\n")

    async def script(connection: RawConnection) -> None:
        await _answer_once(head + chunk(pieces[0]), connection)
        await first_seen.wait()
        await connection.send(b"".join(chunk(piece) for piece in pieces[1:]) + LAST_CHUNK)

    received: list[bytes] = []
    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        stream = await client.stream(deployment_at(upstream.base_url), "/chat/completions", CHAT)
        async with stream:
            async for data in stream.chunks():
                received.append(data)
                first_seen.set()
    assert received[0] == events[0]
    assert b"".join(received) == b"".join(events)


@pytest.mark.parametrize(
    "compress",
    [zlib.compress, lambda data: zlib.compress(data)[2:-4]],
    ids=["zlib-wrapped", "raw-deflate"],
)
async def test_deflate_reply_is_decoded_in_both_forms_servers_send(compress: object) -> None:
    assert callable(compress)
    body = compress(b'{"id": "deflated"}')

    async def script(connection: RawConnection) -> None:
        await _answer_once(reply(body, "content-encoding: deflate"), connection)

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        result = await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
    assert result.body == b'{"id": "deflated"}'


async def test_corrupt_gzip_body_is_unavailable() -> None:
    async def script(connection: RawConnection) -> None:
        await _answer_once(reply(b"not gzip at all", "content-encoding: gzip"), connection)

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)


async def test_body_without_length_is_read_until_the_server_closes() -> None:
    """A reply with neither content-length nor chunking ends at EOF; its connection is not reused."""

    async def script(connection: RawConnection) -> None:
        await _answer_once(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n", connection)
        await connection.send(b'{"id": ')
        await connection.send(b'"until-close"}')

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        first = await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
        second = await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
    assert first.body == second.body == b'{"id": "until-close"}'
    assert upstream.connections == 2


async def test_interim_replies_are_skipped() -> None:
    """100 Continue and 103 Early Hints precede the real reply on the same connection and are ignored."""
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"

    async def script(connection: RawConnection) -> None:
        await _answer_once(interim + reply(b'{"id": "final"}', "x-final: yes"), connection)
        await serve_forever(connection)

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        first = await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
        second = await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
    assert (first.status, first.body, second.body) == (200, b'{"id": "final"}', b"{}")
    assert upstream.connections == 1


async def test_reply_head_of_60_kib_is_accepted() -> None:
    async def script(connection: RawConnection) -> None:
        await _answer_once(reply(b"{}", "x-trace: " + "t" * 60_000, "x-other: " + "o" * 4_000), connection)

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        result = await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
    assert result.status == 200


async def test_reply_head_beyond_the_limit_is_unavailable() -> None:
    """An endless header block is refused (502) instead of being buffered without bound."""

    async def script(connection: RawConnection) -> None:
        await _answer_once(b"HTTP/1.1 200 OK\r\n", connection)
        for _ in range(MAX_HEAD_BYTES // 10_000 + 2):
            await connection.send(b"x-filler: " + b"f" * 10_000 + b"\r\n")
        await connection.client_closed()

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)


async def test_malformed_status_line_is_unavailable() -> None:
    async def script(connection: RawConnection) -> None:
        await _answer_once(b"SMTP ready\r\n\r\n", connection)

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
    assert caught.value.status_code == 502


async def test_no_status_line_within_the_read_timeout_is_upstream_timeout() -> None:
    async def script(connection: RawConnection) -> None:
        await connection.read_request()
        await connection.client_closed()

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        with pytest.raises(UpstreamTimeout) as caught:
            await client.send(deployment_at(upstream.base_url, timeout_s=0.2), "/chat/completions", CHAT)
    assert caught.value.status_code == 504


async def test_stream_stalled_mid_body_is_upstream_timeout_after_what_arrived() -> None:
    async def script(connection: RawConnection) -> None:
        await _answer_once(CHUNKED_HEAD + chunk(b"data: 1\n\n"), connection)
        await connection.client_closed()

    received: list[bytes] = []
    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        deployment = deployment_at(upstream.base_url, timeout_s=0.2)
        async with await client.stream(deployment, "/chat/completions", CHAT) as stream:
            with pytest.raises(UpstreamTimeout):
                async for data in stream.chunks():
                    received.append(data)
    assert received == [b"data: 1\n\n"]


async def test_read_timeout_bounds_the_gap_between_bytes_not_the_whole_stream() -> None:
    """A stream that keeps sending, each gap well inside the timeout, outlives the timeout several times."""
    timeout_s = scaled(1.0)  # a gap of timeout_s / 4 stays inside it even when a busy machine stretches it

    async def script(connection: RawConnection) -> None:
        await _answer_once(CHUNKED_HEAD, connection)
        for n in range(8):
            await asyncio.sleep(timeout_s / 4)
            await connection.send(chunk(f"data: {n}\n\n".encode()))
        await connection.send(LAST_CHUNK)

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        deployment = deployment_at(upstream.base_url, timeout_s=timeout_s)
        async with await client.stream(deployment, "/chat/completions", CHAT) as stream:
            received = [data async for data in stream.chunks()]
    assert b"".join(received) == b"".join(f"data: {n}\n\n".encode() for n in range(8))


async def test_connection_cut_mid_body_is_unavailable() -> None:
    async def script(connection: RawConnection) -> None:
        await _answer_once(reply(b'{"id": "cut"}')[:-5], connection)

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)
    assert caught.value.status_code == 502


async def test_connection_reset_mid_body_is_unavailable() -> None:
    """A TCP reset (not a clean FIN) in the middle of a content-length body."""

    async def script(connection: RawConnection) -> None:
        await _answer_once(reply(b'{"id": "reset"}')[:-5], connection)
        # Lingering for zero seconds makes close() send RST instead of FIN.
        sock = connection.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.writer.transport.abort()

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)


async def test_stream_error_status_is_read_whole_and_raised() -> None:
    error = orjson.dumps({"error": {"message": "slow down", "type": "rate_limit_error", "code": "429"}})

    async def script(connection: RawConnection) -> None:
        await _answer_once(reply(error, status="429 Too Many Requests"), connection)
        await serve_forever(connection)

    async with RawUpstream(script) as upstream, UpstreamClient(connect_timeout_s=scaled(2.0)) as client:
        with pytest.raises(UpstreamHTTPError) as caught:
            await client.stream(deployment_at(upstream.base_url), "/chat/completions", CHAT)
        # The error reply was read completely, so its connection carries the next call.
        assert (await client.send(deployment_at(upstream.base_url), "/chat/completions", CHAT)).status == 200
    assert (caught.value.status, caught.value.message) == (429, "slow down")
    assert upstream.connections == 1
