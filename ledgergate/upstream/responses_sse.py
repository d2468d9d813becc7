"""Watching an OpenAI Responses API SSE stream on its way to the client: usage, generated content, the end.

Event bytes are forwarded exactly as the upstream sent them; only the terminal event (``response.completed``,
``response.incomplete`` or ``response.failed``, the one carrying ``response.usage``) is withheld
(``closing_event``) so the gateway can make the charge durable before the client sees the end of the stream.
"""

from __future__ import annotations

from typing import Any

import orjson

from ledgergate.domain.ports import UpstreamFailure
from ledgergate.upstream.sse import ClosingEventTracker
from ledgergate.upstream.usage import usage_from_responses

_TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_FAILURE_EVENTS = frozenset({"response.failed", "error"})
# Every ``*.delta`` event with a string ``delta`` streams generated output (text, tool arguments, reasoning...).
_DELTA_SUFFIX = ".delta"


class ResponsesStreamTracker(ClosingEventTracker):
    """Fed raw upstream bytes in arbitrary pieces; returns the bytes to forward and records what it saw."""

    def error_event(self, failure: UpstreamFailure) -> bytes:
        """A failure after the status line went out, as a Responses ``error`` event."""
        error = {"type": "error", "code": failure.code, "message": failure.message, "param": failure.param}
        return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"

    def _inspect(self, data: bytes) -> bool:
        payload = self._json_object(data)
        if payload is None:
            return True
        kind = payload.get("type")
        if not isinstance(kind, str):
            return True
        if kind.endswith(_DELTA_SUFFIX):
            delta = payload.get("delta")
            if isinstance(delta, str) and delta:
                self._content_chunks += 1
                self._content_bytes += len(delta.encode("utf-8", "surrogatepass"))
        elif kind in _TERMINAL_EVENTS:
            self._withhold()
            self._record_usage(payload.get("response"))
        if kind in _FAILURE_EVENTS:
            self._failed = True
        return True

    def _record_usage(self, response: Any) -> None:
        usage = response.get("usage") if isinstance(response, dict) else None
        if isinstance(usage, dict):
            self._usage = usage_from_responses(usage) or self._usage
