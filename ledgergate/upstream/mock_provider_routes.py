"""The mock's Anthropic ``/v1/messages`` and OpenAI ``/v1/responses`` routes, streamed and not."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ledgergate.upstream.mock_provider_core import (
    TOKENS_PER_MESSAGE,
    MockProviderCore,
    error_response,
    json_response,
    prompt_tokens_for,
    reply_pieces,
    requested_max_tokens,
    sse,
    words_in,
)


class MessagesAndResponsesRoutes(MockProviderCore):
    """Mixed into the mock provider; each method is one Starlette endpoint."""

    async def anthropic_messages(self, request: Request) -> Response:
        begun = await self.begin(request, anthropic=True)
        if isinstance(begun, Response):
            return begun
        body, controls = begun
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return error_response(400, "messages must be a non-empty list", anthropic=True)
        tokens = self.completion_tokens(body, controls)
        prompt = prompt_tokens_for(messages) + words_in(body.get("system"))
        message: dict[str, Any] = {
            "id": self.next_id("msg"),
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
        return json_response(message)

    async def responses(self, request: Request) -> Response:
        """The OpenAI Responses API: ``input`` is a string or a list of message items."""
        begun = await self.begin(request, anthropic=False)
        if isinstance(begun, Response):
            return begun
        body, controls = begun
        raw_input = body.get("input")
        if isinstance(raw_input, str):
            prompt = len(raw_input.split()) + TOKENS_PER_MESSAGE
        elif isinstance(raw_input, list) and raw_input:
            prompt = prompt_tokens_for(raw_input)
        else:
            return error_response(400, "input must be a string or a non-empty list")
        prompt += words_in(body.get("instructions"))
        tokens = self.completion_tokens(body, controls)
        max_tokens = requested_max_tokens(body)
        incomplete = max_tokens is not None and tokens >= max_tokens
        text = {"type": "output_text", "text": "".join(reply_pieces(tokens)), "annotations": []}
        item = {"type": "message", "id": self.next_id("msg"), "status": "completed", "role": "assistant"}
        response: dict[str, Any] = {
            "id": self.next_id("resp"),
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
        return json_response(response)


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


async def _anthropic_events(
    message: dict[str, Any], pieces: list[str], usage: dict[str, Any] | None, chunk_delay_ms: int
) -> AsyncIterator[bytes]:
    start = {**message, "content": [], "stop_reason": None}
    if usage is not None:
        start["usage"] = {**usage, "output_tokens": 1}
    yield sse({"type": "message_start", "message": start}, "message_start")
    block_start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    yield sse(block_start, "content_block_start")
    for piece in pieces:
        if chunk_delay_ms:
            await asyncio.sleep(chunk_delay_ms / 1000)
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        yield sse(delta, "content_block_delta")
    yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    message_delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
    }
    if usage is not None:
        message_delta["usage"] = {"output_tokens": usage["output_tokens"]}
    yield sse(message_delta, "message_delta")
    yield sse({"type": "message_stop"}, "message_stop")


async def _responses_events(response: dict[str, Any], pieces: list[str], chunk_delay_ms: int) -> AsyncIterator[bytes]:
    sequence = itertools.count()

    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

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
