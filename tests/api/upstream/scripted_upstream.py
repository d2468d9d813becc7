"""A loopback HTTP/1.1 server answering each path with fixed raw bytes, for replies FakeUpstream never sends.

Real sockets and real HTTP framing (Set-Cookie, redirects, gzip, a body cut off mid-stream), written byte
for byte so the test controls exactly what the client sees.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterable

HEAD_LIMIT_BYTES = 65536


def http_reply(
    status: str,
    body: bytes,
    headers: Iterable[tuple[str, str]] = (),
    *,
    keep_alive: bool = False,
) -> bytes:
    """A complete HTTP/1.1 reply with a content-length body."""
    lines = [f"HTTP/1.1 {status}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def gzip_json_reply(body: bytes) -> bytes:
    return http_reply(
        "200 OK", gzip.compress(body), [("content-type", "application/json"), ("content-encoding", "gzip")]
    )


def truncated_chunked_reply(first_chunk: bytes) -> bytes:
    """Headers and one chunk of an SSE stream; the server then drops the connection without the last chunk."""
    head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    return head.encode() + f"{len(first_chunk):x}\r\n".encode() + first_chunk + b"\r\n"


class ScriptedUpstream:
    """Serves ``replies[path]`` (404 otherwise); records each request's path and lower-cased headers.

    A header sent twice is recorded as ``"first, second"``, so duplicates stay visible.
    """

    def __init__(self, replies: dict[str, bytes]) -> None:
        self.replies = replies
        self.received: list[tuple[str, dict[str, str]]] = []
        self.open_connections = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> ScriptedUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                path, headers = self._parse_head(head)
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append((path, headers))
                reply = self.replies.get(path, http_reply("404 Not Found", b""))
                writer.write(reply)
                await writer.drain()
                if b"\r\ncontent-length: " not in reply.split(b"\r\n\r\n", 1)[0] or b"connection: close" in reply:
                    return
        finally:
            self.open_connections -= 1
            writer.close()

    @staticmethod
    def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
        request_line, *header_lines = head[:HEAD_LIMIT_BYTES].decode("latin-1").split("\r\n")
        target = request_line.split(" ")[1]
        headers: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                key, value = name.strip().lower(), value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return target, headers
