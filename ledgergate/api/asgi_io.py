"""Raw ASGI reading and writing for the LLM routes: the hot path skips Starlette's request, response and routing
objects (and the task group a ``StreamingResponse`` opens per request), which cost more CPU than the governance.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any

from starlette.types import Receive, Scope, Send

JSON = b"application/json"
EVENT_STREAM = b"text/event-stream"


class RequestHeaders:
    """A request's headers by lower-case name (the first of repeated ones, as Starlette's ``Headers.get``)."""

    __slots__ = ("_values",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        values: dict[str, str] = {}
        for name, value in raw:
            values.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        self._values = values

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name, default)


class HttpRequest:
    """What an LLM route reads of a request: its headers and its whole body."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: RequestHeaders, body: bytes) -> None:
        self.headers = headers
        self.body = body


async def read_request(scope: Scope, receive: Receive) -> HttpRequest | None:
    """The request with its body, or ``None`` if the client left before sending all of it."""
    message = await receive()
    if message["type"] != "http.request":
        return None
    body: bytes = message.get("body", b"")
    if message.get("more_body", False):
        parts = [body]
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
    return HttpRequest(RequestHeaders(scope["headers"]), body)


def _raw_headers(
    content_type: bytes, headers: Mapping[str, str], content_length: int | None
) -> list[tuple[bytes, bytes]]:
    raw = [(b"content-type", content_type)]
    if content_length is not None:
        raw.append((b"content-length", str(content_length).encode()))
    raw += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    return raw


async def send_body(
    send: Send, status: int, body: bytes, headers: Mapping[str, str], content_type: bytes = JSON
) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": _raw_headers(content_type, headers, len(body))}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_stream(
    receive: Receive, send: Send, chunks: AsyncGenerator[bytes, None], headers: Mapping[str, str]
) -> None:
    """Stream ``chunks`` as an event stream; a client that goes away cancels the iteration at once (its ``finally``
    runs) instead of when the next chunk finds the connection closed."""
    streaming = asyncio.current_task()
    state = {"done": False, "disconnected": False}

    async def watch_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not state["done"] and streaming is not None:
            state["disconnected"] = True
            streaming.cancel()

    watcher = asyncio.get_running_loop().create_task(watch_disconnect())
    try:
        start: dict[str, Any] = {
            "type": "http.response.start",
            "status": 200,
            "headers": _raw_headers(EVENT_STREAM, headers, None),
        }
        await send(start)
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        state["done"] = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not state["disconnected"] or streaming is None:
            raise
        # Our own cancellation for a client that left: the request is over, not the server.
        streaming.uncancel()
    finally:
        state["done"] = True
        watcher.cancel()
        await chunks.aclose()  # runs the generator's ``finally`` if a failed send left it suspended at a yield
