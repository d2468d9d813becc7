"""A fake OpenAI- (chat completions, embeddings, responses) and Anthropic-compatible (messages) model server.

Replies and token counts are deterministic, streamed where the real API streams. Used by ``serve --demo`` and
as the tests' real upstream. Prompt tokens are the whitespace-separated words of every message plus 3 per
message (an image part 765, a file part 1,000, as OpenAI bills them); completion tokens default to
``min(max_tokens or 16, 16)`` per choice. Request headers steer it: ``x-mock-latency-ms``, ``x-mock-status``,
``x-mock-completion-tokens``, ``x-mock-chunk-delay-ms``, ``x-mock-no-usage: 1``, ``x-mock-cached-tokens``,
``x-mock-words-per-chunk: N`` (stream N tokens per chunk) and ``x-mock-uncapped-tokens: N`` (write the largest
cap received, or N tokens without one).
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ledgergate.upstream.mock_provider_core import (
    chunked,
    error_response,
    json_response,
    prompt_tokens_for,
    reply_pieces,
    requested_max_tokens,
    sse,
)
from ledgergate.upstream.mock_provider_routes import MessagesAndResponsesRoutes

DEFAULT_EMBEDDING_DIMENSIONS = 8
MAX_EMBEDDING_DIMENSIONS = 4096
MODEL_IDS = ("mock-gpt", "mock-embedding", "mock-claude")


class _MockProvider(MessagesAndResponsesRoutes):
    """The OpenAI chat, embeddings and models routes, plus the Anthropic/Responses ones it inherits."""

    async def chat_completions(self, request: Request) -> Response:
        begun = await self.begin(request, anthropic=False)
        if isinstance(begun, Response):
            return begun
        body, controls = begun
        messages = body.get("messages")
        n = 1 if body.get("n") is None else body["n"]
        if not isinstance(messages, list) or not messages:
            return error_response(400, "messages must be a non-empty list")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
            return error_response(400, "n must be an integer between 1 and 128")
        tokens = self.completion_tokens(body, controls)
        max_tokens = requested_max_tokens(body)
        finish_reason = "length" if max_tokens is not None and tokens >= max_tokens else "stop"
        prompt = prompt_tokens_for(messages)
        usage = None if controls.no_usage else _chat_usage(prompt, tokens * n, controls.cached_tokens)
        head = {
            "id": self.next_id("chatcmpl"),
            "created": int(time.time()),
            "model": body.get("model", "mock-gpt"),
        }
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            final_usage = usage if include_usage else None
            pieces = chunked(reply_pieces(tokens), controls.words_per_chunk)
            chunks = _chat_chunks(head, pieces, n, finish_reason, final_usage, include_usage, controls.chunk_delay_ms)
            return StreamingResponse(chunks, media_type="text/event-stream")
        text = "".join(reply_pieces(tokens))
        message = {"role": "assistant", "content": text}
        choices = [{"index": i, "message": message, "finish_reason": finish_reason} for i in range(n)]
        reply: dict[str, Any] = {**head, "object": "chat.completion", "choices": choices}
        if usage is not None:
            reply["usage"] = usage
        return json_response(reply)

    async def embeddings(self, request: Request) -> Response:
        begun = await self.begin(request, anthropic=False)
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
                return error_response(400, "input must be a string, a list of strings or token arrays")
        dimensions = body.get("dimensions")
        if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_EMBEDDING_DIMENSIONS:
            dimensions = DEFAULT_EMBEDDING_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        vectors = [_embedding(item, dimensions, as_base64=as_base64) for item in items]
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        reply: dict[str, Any] = {"object": "list", "data": data, "model": body.get("model", "mock-embedding")}
        if not controls.no_usage:
            reply["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
        return json_response(reply)

    async def models(self, request: Request) -> Response:
        data = [{"id": model, "object": "model", "created": 0, "owned_by": "mock"} for model in MODEL_IDS]
        return json_response({"object": "list", "data": data})

    async def received_requests(self, request: Request) -> Response:
        return json_response(self.received)

    async def reset(self, request: Request) -> Response:
        self.received.clear()
        return json_response({"status": "ok"})


def _chat_usage(prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": min(cached, prompt)},
    }


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
            yield sse({**base, "choices": [choice]})
    if usage is not None:
        yield sse({**base, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"


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
