"""A loopback TCP server whose every connection runs a test-written script: exact reply bytes, stalls, drops.

Unlike ScriptedUpstream (one canned reply per path) the script sees the connection itself, so a test can
answer, then close an idle keep-alive connection, cut a body short, or wait for the client between chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RawRequest:
    request_line: str
    headers: list[tuple[str, str]]  # as sent: order and case kept
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class RawConnection:
    def __init__(self, upstream: RawUpstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.upstream = upstream
        self.reader = reader
        self.writer = writer

    async def read_request(self) -> RawRequest | None:
        """The next request on this connection, or None once the client closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        request_line, *lines = head.decode("latin-1").removesuffix("\r\n\r\n").split("\r\n")
        headers = [(name, value.strip()) for name, value in (line.split(":", 1) for line in lines)]
        length = sum(int(value) for name, value in headers if name.lower() == "content-length")
        request = RawRequest(request_line, headers, await self.reader.readexactly(length))
        self.upstream.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def client_closed(self) -> bool:
        """Wait for the client to close the connection; True if it did so without sending anything more."""
        try:
            return await self.reader.read(1) == b""
        except ConnectionError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


Script = Callable[[RawConnection], Awaitable[None]]


class RawUpstream:
    """Runs ``script`` for each accepted connection; records requests and connection counts."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[RawRequest] = []
        self.connections = 0
        self.open_connections = 0
        self.max_open_connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._handlers:
            task.cancel()  # a script may still wait for something the test no longer does
        # Python 3.11's wait_closed does not wait for connection handlers; they must end inside the loop.
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        self.max_open_connections = max(self.max_open_connections, self.open_connections)
        connection = RawConnection(self, reader, writer)
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self.script(connection)
        except asyncio.CancelledError:
            # Only __aexit__ cancels handlers (the server is going away); a cancelled handler task would be
            # logged as an error by asyncio's stream machinery.
            pass
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            self._handlers.discard(task)
            await connection.close()


def reply(body: bytes = b"{}", *headers: str, status: str = "200 OK") -> bytes:
    """A keep-alive HTTP/1.1 reply with a content-length body."""
    lines = [f"HTTP/1.1 {status}", "content-type: application/json", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


async def serve_forever(connection: RawConnection, answer: bytes = b"") -> None:
    """Answer every request on the connection with ``answer`` (a keep-alive ``{}`` reply by default)."""
    while await connection.read_request() is not None:
        await connection.send(answer or reply())
