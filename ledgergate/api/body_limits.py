"""Request body size limits, enforced while the body arrives: a declared ``Content-Length`` over the limit is
answered 413 before a byte of the body is read, and a chunked (or lying) body is counted as it arrives and refused
as soon as it passes the limit, so no request can make the gateway buffer more than the limit."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope

BODY_TOO_LARGE_TYPE = "request_too_large"


class BodyTooLarge(HTTPException):
    """A request body over the route's limit: 413 with the JSON error body (api/errors.py).

    An ``HTTPException`` because FastAPI turns any other exception raised while it reads a body into a 400.
    """

    def __init__(self, limit_bytes: int, received_bytes: int | None = None) -> None:
        size = f"{received_bytes} bytes" if received_bytes is not None else "more than that"
        super().__init__(
            413,
            f"request body too large: {size}; the limit of this route is {limit_bytes} bytes "
            "(general_settings.max_request_body_bytes, max_llm_request_body_bytes for the LLM routes)",
        )
        self.limit_bytes = limit_bytes


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or None when absent (chunked); servers refuse malformed values first."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def check_declared_length(scope: Scope, limit_bytes: int) -> None:
    """Raise ``BodyTooLarge`` for a declared body over the limit, before reading it."""
    length = declared_length(scope)
    if length is not None and length > limit_bytes:
        raise BodyTooLarge(limit_bytes, length)


def limited_receive(receive: Receive, limit_bytes: int) -> Receive:
    """``receive`` that counts body bytes and raises ``BodyTooLarge`` once they pass ``limit_bytes``."""
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit_bytes:
                raise BodyTooLarge(limit_bytes)
        return message

    return receive_within_limit
