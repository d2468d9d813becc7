"""The request plumbing shared by every mock provider route: test controls, token counting, reply text.

See ``mock_provider`` for the ``x-mock-*`` headers that steer it.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

REPLY_WORDS = ("This", "is", "a", "mock", "response.")
DEFAULT_COMPLETION_TOKENS = 16
TOKENS_PER_MESSAGE = 3
# Billed like OpenAI bills them: a 1,024 x 1,024 high-detail image is 765 tokens (85 + 4 tiles x 170), whatever
# the bytes of its URL; a file part (a few PDF pages) 1,000.
IMAGE_PART_TOKENS = 765
FILE_PART_TOKENS = 1_000
_IMAGE_PART_TYPES = ("image_url", "input_image", "image")
_FILE_PART_TYPES = ("file", "input_file", "document", "input_audio")
RECEIVED_LIMIT = 1000


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def error_response(status: int, message: str, *, anthropic: bool = False) -> Response:
    if anthropic:
        return json_response({"type": "error", "error": {"type": "api_error", "message": message}}, status)
    error_type = "invalid_request_error" if status < 500 else "api_error"
    return json_response(
        {"error": {"message": message, "type": error_type, "param": None, "code": str(status)}}, status
    )


def sse(payload: Any, event: str | None = None) -> bytes:
    prefix = f"event: {event}\n".encode() if event else b""
    return prefix + b"data: " + orjson.dumps(payload) + b"\n\n"


def _header_int(request: Request, name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


@dataclass(frozen=True, slots=True)
class Controls:
    latency_ms: int
    status: int | None
    completion_tokens: int | None
    chunk_delay_ms: int
    no_usage: bool
    cached_tokens: int
    # Set: a greedy upstream that writes as much as it is allowed, the largest cap it receives or this many
    # tokens when it receives none (what a real model may do with an uncapped request).
    uncapped_tokens: int | None = None
    words_per_chunk: int = 1  # an upstream that batches several tokens into each streamed chunk

    @classmethod
    def of(cls, request: Request) -> Controls:
        status = _header_int(request, "x-mock-status")
        return cls(
            latency_ms=_header_int(request, "x-mock-latency-ms") or 0,
            status=status if status is not None and 400 <= status <= 599 else None,
            completion_tokens=_header_int(request, "x-mock-completion-tokens"),
            chunk_delay_ms=_header_int(request, "x-mock-chunk-delay-ms") or 0,
            no_usage=request.headers.get("x-mock-no-usage", "") not in ("", "0"),
            cached_tokens=_header_int(request, "x-mock-cached-tokens") or 0,
            uncapped_tokens=_header_int(request, "x-mock-uncapped-tokens"),
            words_per_chunk=max(1, _header_int(request, "x-mock-words-per-chunk") or 1),
        )


def words_in(content: Any) -> int:
    """Tokens of a message ``content``: a string's words, or a list of parts (text words, images, files)."""
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(_part_tokens(part) for part in content if isinstance(part, dict))
    return 0


def _part_tokens(part: dict[str, Any]) -> int:
    kind = part.get("type")
    if kind in _IMAGE_PART_TYPES:
        return IMAGE_PART_TOKENS
    if kind in _FILE_PART_TYPES:
        return FILE_PART_TOKENS
    return words_in(part.get("text"))


def chunked(pieces: list[str], words_per_chunk: int) -> list[str]:
    """The reply's pieces joined ``words_per_chunk`` at a time, as an upstream that batches tokens streams them."""
    return ["".join(pieces[at : at + words_per_chunk]) for at in range(0, len(pieces), words_per_chunk)]


def prompt_tokens_for(messages: list[Any]) -> int:
    """The mock's prompt token count: words of every message plus a fixed overhead per message."""
    words = sum(words_in(m.get("content")) for m in messages if isinstance(m, dict))
    return words + TOKENS_PER_MESSAGE * len(messages)


def reply_pieces(tokens: int) -> list[str]:
    """One text piece per completion token; their concatenation is the non-streamed reply."""
    return [("" if i == 0 else " ") + REPLY_WORDS[i % len(REPLY_WORDS)] for i in range(tokens)]


def requested_max_tokens(body: dict[str, Any]) -> int | None:
    """The largest output cap in the body, in any field: the mock honours the most generous one."""
    caps = [body.get(key) for key in ("max_tokens", "max_completion_tokens", "max_output_tokens")]
    return max((cap for cap in caps if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0), default=None)


Begun = tuple[dict[str, Any], Controls] | Response


class MockProviderCore:
    """Records what it receives and turns a request into its JSON body and test controls."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-mock-{next(self._ids)}"

    async def begin(self, request: Request, *, anthropic: bool) -> Begun:
        """Record the request, apply the test controls, and return its JSON body or the reply to send."""
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        self.received.append({"path": request.url.path, "headers": dict(request.headers), "json": body})
        if len(self.received) > RECEIVED_LIMIT:
            del self.received[: len(self.received) - RECEIVED_LIMIT]
        controls = Controls.of(request)
        if controls.latency_ms:
            await asyncio.sleep(controls.latency_ms / 1000)
        if controls.status is not None:
            return error_response(controls.status, f"mock upstream error {controls.status}", anthropic=anthropic)
        if not isinstance(body, dict):
            return error_response(400, "request body must be a JSON object", anthropic=anthropic)
        return body, controls

    @staticmethod
    def completion_tokens(body: dict[str, Any], controls: Controls) -> int:
        if controls.completion_tokens is not None:
            return controls.completion_tokens
        if controls.uncapped_tokens is not None:
            return requested_max_tokens(body) or controls.uncapped_tokens
        return min(requested_max_tokens(body) or DEFAULT_COMPLETION_TOKENS, DEFAULT_COMPLETION_TOKENS)
