"""A fake OpenAI- (chat completions, embeddings, responses) and Anthropic-compatible (messages) model server.

Replies and token counts are deterministic, streamed where the real API streams. Used by ``serve --demo`` and
as the tests' real upstream. Prompt tokens are the whitespace-separated words of every message plus 3 per
message; completion tokens default to ``min(max_tokens or 16, 16)`` per choice. Request headers steer it:
``x-mock-latency-ms``, ``x-mock-status``, ``x-mock-completion-tokens``, ``x-mock-chunk-delay-ms``,
``x-mock-no-usage: 1`` and ``x-mock-cached-tokens``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

REPLY_WORDS = ("This", "is", "a", "mock", "response.")
DEFAULT_COMPLETION_TOKENS = 16
TOKENS_PER_MESSAGE = 3
RECEIVED_LIMIT = 1000
DEFAULT_EMBEDDING_DIMENSIONS = 8
MAX_EMBEDDING_DIMENSIONS = 4096
MODEL_IDS = ("mock-gpt", "mock-embedding", "mock-claude")


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def _error(status: int, message: str, *, anthropic: bool = False) -> Response:
    if anthropic:
        return _json({"type": "error", "error": {"type": "api_error", "message": message}}, status)
    error_type = "invalid_request_error" if status < 500 else "api_error"
    return _json({"error": {"message": message, "type": error_type, "param": None, "code": str(status)}}, status)


def _sse(payload: Any, event: str | None = None) -> bytes:
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
class _Controls:
    latency_ms: int
    status: int | None
    completion_tokens: int | None
    chunk_delay_ms: int
    no_usage: bool
    cached_tokens: int

    @classmethod
    def of(cls, request: Request) -> _Controls:
        status = _header_int(request, "x-mock-status")
        return cls(
            latency_ms=_header_int(request, "x-mock-latency-ms") or 0,
            status=status if status is not None and 400 <= status <= 599 else None,
            completion_tokens=_header_int(request, "x-mock-completion-tokens"),
            chunk_delay_ms=_header_int(request, "x-mock-chunk-delay-ms") or 0,
            no_usage=request.headers.get("x-mock-no-usage", "") not in ("", "0"),
            cached_tokens=_header_int(request, "x-mock-cached-tokens") or 0,
        )


def _words_in(content: Any) -> int:
    """Words of a message ``content``: a string or a list of parts with ``text``."""
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(_words_in(part.get("text")) for part in content if isinstance(part, dict))
    return 0


def prompt_tokens_for(messages: list[Any]) -> int:
    """The mock's prompt token count: words of every message plus a fixed overhead per message."""
    words = sum(_words_in(m.get("content")) for m in messages if isinstance(m, dict))
    return words + TOKENS_PER_MESSAGE * len(messages)


def reply_pieces(tokens: int) -> list[str]:
    """One text piece per completion token; their concatenation is the non-streamed reply."""
    return [("" if i == 0 else " ") + REPLY_WORDS[i % len(REPLY_WORDS)] for i in range(tokens)]


def _requested_max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


_Begun = tuple[dict[str, Any], "_Controls"] | Response


class _MockProvider:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}-mock-{next(self._ids)}"

    async def _begin(self, request: Request, *, anthropic: bool) -> _Begun:
        """Record the request, apply the test controls, and return its JSON body or the reply to send."""
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        self.received.append({"path": request.url.path, "headers": dict(request.headers), "json": body})
        if len(self.received) > RECEIVED_LIMIT:
            del self.received[: len(self.received) - RECEIVED_LIMIT]
        controls = _Controls.of(request)
        if controls.latency_ms:
            await asyncio.sleep(controls.latency_ms / 1000)
        if controls.status is not None:
            return _error(controls.status, f"mock upstream error {controls.status}", anthropic=anthropic)
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object", anthropic=anthropic)
        return body, controls

    @staticmethod
    def _completion_tokens(body: dict[str, Any], controls: _Controls) -> int:
        if controls.completion_tokens is not None:
            return controls.completion_tokens
        return min(_requested_max_tokens(body) or DEFAULT_COMPLETION_TOKENS, DEFAULT_COMPLETION_TOKENS)

    async def chat_completions(self, request: Request) -> Response:
        begun = await self._begin(request, anthropic=False)
        if isinstance(begun, Response):
            return begun
        body, controls = begun
        messages = body.get("messages")
        n = 1 if body.get("n") is None else body["n"]
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages must be a non-empty list")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
            return _error(400, "n must be an integer between 1 and 128")
        tokens = self._completion_tokens(body, controls)
        max_tokens = _requested_max_tokens(body)
        finish_reason = "length" if max_tokens is not None and tokens >= max_tokens else "stop"
        prompt = prompt_tokens_for(messages)
        usage = None if controls.no_usage else _chat_usage(prompt, tokens * n, controls.cached_tokens)
        head = {
            "id": self._next_id("chatcmpl"),
            "created": int(time.time()),
            "model": body.get("model", "mock-gpt"),
        }
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            final_usage = usage if include_usage else None
            pieces = reply_pieces(tokens)
            chunks = _chat_chunks(head, pieces, n, finish_reason, final_usage, include_usage, controls.chunk_delay_ms)
            return StreamingResponse(chunks, media_type="text/event-stream")
        text = "".join(reply_pieces(tokens))
        message = {"role": "assistant", "content": text}
        choices = [{"index": i, "message": message, "finish_reason": finish_reason} for i in range(n)]
        reply: dict[str, Any] = {**head, "object": "chat.completion", "choices": choices}
        if usage is not None:
            reply["usage"] = usage
        return _json(reply)

    async def embeddings(self, request: Request) -> Response:
        begun = await self._begin(request, anthropic=False)
        if isinstance(begun, Response):
            return begun
        body, controls = begun
        raw_input = body.get("input")
        items = raw_input if isinstance(raw_input, list) and raw_input else [raw_input]
        if all(isinstance(item, int) for item in items):
            items = [items]  # a single pre-tokenised input
        prompt = 0
        for item in items:
            if isinstance(item, str):
                prompt += len(item.split())
            elif isinstance(item, list) and all(isinstance(token, int) for token in item):
                prompt += len(item)
            else:
                return _error(400, "input must be a string, a list of strings or token arrays")
        dimensions = body.get("dimensions")
        if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_EMBEDDING_DIMENSIONS:
            dimensions = DEFAULT_EMBEDDING_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        vectors = [_embedding(item, dimensions, as_base64=as_base64) for item in items]
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        reply: dict[str, Any] = {"object": "list", "data": data, "model": body.get("model", "mock-embedding")}
        if not controls.no_usage:
            reply["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
        return _json(reply)

    async def models(self, request: Request) -> Response:
        data = [{"id": model, "object": "model", "created": 0, "owned_by": "mock"} for model in MODEL_IDS]
        return _json({"object": "list", "data": data})

    async def anthropic_messages(self, request: Request) -> Response:
        begun = await self._begin(request, anthropic=True)
        if isinstance(begun, Response):
            return begun
        body, controls = begun
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages must be a non-empty list", anthropic=True)
        tokens = self._completion_tokens(body, controls)
        prompt = prompt_tokens_for(messages) + _words_in(body.get("system"))
        message: dict[str, Any] = {
            "id": self._next_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "mock-claude"),
            "content": [{"type": "text", "text": "".join(reply_pieces(tokens))}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
        }
        usage = None if controls.no_usage else _anthropic_usage(prompt, tokens, controls.cached_tokens)
        if body.get("stream") is True:
            return StreamingResponse(
                _anthropic_events(message, reply_pieces(tokens), usage, controls.chunk_delay_ms),
                media_type="text/event-stream",
            )
        if usage is not None:
            message["usage"] = usage
        return _json(message)

    async def responses(self, request: Request) -> Response:
        """The OpenAI Responses API: ``input`` is a string or a list of message items."""
        begun = await self._begin(request, anthropic=False)
        if isinstance(begun, Response):
            return begun
        body, controls = begun
        raw_input = body.get("input")
        if isinstance(raw_input, str):
            prompt = len(raw_input.split()) + TOKENS_PER_MESSAGE
        elif isinstance(raw_input, list) and raw_input:
            prompt = prompt_tokens_for(raw_input)
        else:
            return _error(400, "input must be a string or a non-empty list")
        prompt += _words_in(body.get("instructions"))
        tokens = self._completion_tokens(body, controls)
        max_tokens = _requested_max_tokens(body)
        incomplete = max_tokens is not None and tokens >= max_tokens
        text = {"type": "output_text", "text": "".join(reply_pieces(tokens)), "annotations": []}
        item = {"type": "message", "id": self._next_id("msg"), "status": "completed", "role": "assistant"}
        response: dict[str, Any] = {
            "id": self._next_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "incomplete" if incomplete else "completed",
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "model": body.get("model", "mock-gpt"),
            "output": [{**item, "content": [text]}],
            "usage": None if controls.no_usage else _responses_usage(prompt, tokens, controls.cached_tokens),
        }
        if body.get("stream") is True:
            events = _responses_events(response, reply_pieces(tokens), controls.chunk_delay_ms)
            return StreamingResponse(events, media_type="text/event-stream")
        return _json(response)

    async def received_requests(self, request: Request) -> Response:
        return _json(self.received)

    async def reset(self, request: Request) -> Response:
        self.received.clear()
        return _json({"status": "ok"})


def _chat_usage(prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": min(cached, prompt)},
    }


def _anthropic_usage(prompt: int, output: int, cached: int) -> dict[str, Any]:
    """Anthropic counts cache reads apart from ``input_tokens``."""
    cache_read = min(cached, prompt)
    usage = {"input_tokens": prompt - cache_read, "output_tokens": output}
    if cache_read:
        usage["cache_read_input_tokens"] = cache_read
    return usage


def _responses_usage(prompt: int, output: int, cached: int) -> dict[str, Any]:
    details = {"input_tokens_details": {"cached_tokens": min(cached, prompt)}}
    return {"input_tokens": prompt, "output_tokens": output, "total_tokens": prompt + output, **details}


def _embedding(item: Any, dimensions: int, *, as_base64: bool) -> list[float] | str:
    seed = len(orjson.dumps(item))
    vector = [((seed + j) % 7) / 7 for j in range(dimensions)]
    if as_base64:
        return base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
    return vector


async def _chat_chunks(
    head: dict[str, Any],
    pieces: list[str],
    n: int,
    finish_reason: str,
    usage: dict[str, Any] | None,
    include_usage: bool,
    chunk_delay_ms: int,
) -> AsyncIterator[bytes]:
    base = {**head, "object": "chat.completion.chunk"}
    if include_usage:
        base["usage"] = None  # OpenAI marks every non-final chunk this way when usage was requested
    steps = pieces or [""]
    for position, piece in enumerate(steps):
        for index in range(n):
            if chunk_delay_ms and (position or index):
                await asyncio.sleep(chunk_delay_ms / 1000)
            delta = {"role": "assistant", "content": piece} if position == 0 else {"content": piece}
            last = position == len(steps) - 1
            choice = {
                "index": index,
                "delta": delta,
                "finish_reason": finish_reason if last else None,
                "logprobs": None,
            }
            yield _sse({**base, "choices": [choice]})
    if usage is not None:
        yield _sse({**base, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"


async def _anthropic_events(
    message: dict[str, Any], pieces: list[str], usage: dict[str, Any] | None, chunk_delay_ms: int
) -> AsyncIterator[bytes]:
    start = {**message, "content": [], "stop_reason": None}
    if usage is not None:
        start["usage"] = {**usage, "output_tokens": 1}
    yield _sse({"type": "message_start", "message": start}, "message_start")
    block_start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    yield _sse(block_start, "content_block_start")
    for piece in pieces:
        if chunk_delay_ms:
            await asyncio.sleep(chunk_delay_ms / 1000)
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        yield _sse(delta, "content_block_delta")
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    message_delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
    }
    if usage is not None:
        message_delta["usage"] = {"output_tokens": usage["output_tokens"]}
    yield _sse(message_delta, "message_delta")
    yield _sse({"type": "message_stop"}, "message_stop")


async def _responses_events(response: dict[str, Any], pieces: list[str], chunk_delay_ms: int) -> AsyncIterator[bytes]:
    sequence = itertools.count()

    def event(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    yield event("response.created", response={**response, "status": "in_progress", "output": [], "usage": None})
    item = response["output"][0]
    yield event("response.output_item.added", output_index=0, item={**item, "status": "in_progress", "content": []})
    at = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    yield event("response.content_part.added", **at, part={"type": "output_text", "text": "", "annotations": []})
    for piece in pieces:
        if chunk_delay_ms:
            await asyncio.sleep(chunk_delay_ms / 1000)
        yield event("response.output_text.delta", **at, delta=piece)
    yield event("response.output_text.done", **at, text=item["content"][0]["text"])
    yield event("response.content_part.done", **at, part=item["content"][0])
    yield event("response.output_item.done", output_index=0, item=item)
    yield event(f"response.{response['status']}", response=response)


def create_mock_provider_app() -> Starlette:
    """A fresh fake provider; ``app.state.received`` lists the last 1000 LLM requests it got."""
    provider = _MockProvider()
    routes = [
        Route("/v1/chat/completions", provider.chat_completions, methods=["POST"]),
        Route("/v1/embeddings", provider.embeddings, methods=["POST"]),
        Route("/v1/models", provider.models, methods=["GET"]),
        Route("/v1/messages", provider.anthropic_messages, methods=["POST"]),
        Route("/v1/responses", provider.responses, methods=["POST"]),
        Route("/mock/received", provider.received_requests, methods=["GET"]),
        Route("/mock/reset", provider.reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.received = provider.received
    return app
