"""Watching an Anthropic Messages SSE stream on its way to the client: usage, generated content, end of stream.

Event bytes are forwarded exactly as the upstream sent them; only the final ``message_stop`` event is withheld
(``closing_event``) so the gateway can make the charge durable before the client sees the end of the stream.
Usage arrives in two parts: ``message_start`` carries the input counts, ``message_delta`` the running output
count (recent API versions repeat the input counts there too; the latest value of each field wins).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from ledgergate.domain.ports import UpstreamFailure
from ledgergate.domain.pricing import Usage
from ledgergate.upstream.sse import ClosingEventTracker
from ledgergate.upstream.usage import usage_from_anthropic

# The delta fields that carry generated output: text, tool-call JSON, extended thinking.
_DELTA_TEXT_FIELDS = ("text", "partial_json", "thinking")


class AnthropicStreamTracker(ClosingEventTracker):
    """Fed raw upstream bytes in arbitrary pieces; returns the bytes to forward and records what it saw."""

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, Any] = {}
        self._output_final = False

    @property
    def usage(self) -> Usage | None:
        """Exact once ``message_delta`` reported output; before that (client gone, stream cut) the exact input
        with at least one output token per content chunk seen. None when the stream carried no usage."""
        usage = usage_from_anthropic(self._counts) if self._counts else None
        if usage is None or self._output_final:
            return usage
        return dataclasses.replace(usage, completion_tokens=max(usage.completion_tokens, self.content_chunks))

    def error_event(self, failure: UpstreamFailure) -> bytes:
        """A failure after the status line went out, as an Anthropic ``error`` event."""
        error = {"type": "error", "error": {"type": failure.error_type, "message": failure.message}}
        return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"

    def _inspect(self, data: bytes) -> bool:
        payload = self._json_object(data)
        if payload is None:
            return True
        kind = payload.get("type")
        if kind == "content_block_delta":
            self._count_content(payload.get("delta"))
        elif kind == "message_start":
            message = payload.get("message")
            self._merge(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "message_delta":
            usage = payload.get("usage")
            self._merge(usage)
            if isinstance(usage, dict) and "output_tokens" in usage:
                self._output_final = True
        elif kind == "message_stop":
            self._withhold()
        elif kind == "error":
            self._failed = True
        return True

    def _merge(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._counts.update((name, value) for name, value in usage.items() if value is not None)

    def _count_content(self, delta: Any) -> None:
        if not isinstance(delta, dict):
            return
        size = 0
        for field in _DELTA_TEXT_FIELDS:
            piece = delta.get(field)
            if isinstance(piece, str):
                size += len(piece.encode("utf-8", "surrogatepass"))
        if size:
            self._content_chunks += 1
            self._content_bytes += size
