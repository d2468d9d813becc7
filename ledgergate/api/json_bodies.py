"""Admin JSON bodies with a duplicate key are refused (400 naming the key) before FastAPI reads them.

FastAPI parses a body with ``json.loads``, which keeps the last of two equal keys: ``{"max_budget": 0.01,
"max_budget": null}`` was an unlimited key. The body is read here once (within the route's size limit), checked by
``services.body_fields.duplicate_json_key`` and handed on unchanged.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope

from ledgergate.api.errors import ApiError
from ledgergate.services.body_fields import duplicate_json_key

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type":
            media = bytes(value).split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


async def checked_json_receive(scope: Scope, receive: Receive) -> Receive:
    """``receive`` replaying the body read here; raises ``ApiError`` (400) for a duplicate key."""
    if scope.get("method") not in _BODY_METHODS or not _is_json(scope):
        return receive
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            pending: Message | None = message  # a disconnect: let the app see it
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            pending = None
            break
    body = b"".join(chunks)
    duplicate = duplicate_json_key(body) if pending is None else None
    if duplicate is not None:
        text = f"{duplicate}: appears twice in the JSON body; send each field once"
        raise ApiError(400, text, "invalid_request_error", duplicate)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return pending or {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
