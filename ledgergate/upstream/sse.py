"""Watching an OpenAI SSE stream on its way to the client: usage, generated content, end of stream.

Bytes are forwarded exactly as the upstream sent them, one whole event at a time; only the terminal
``[DONE]`` (which the gateway re-emits after charging) and, on request, the usage-only chunk are withheld.
The trackers are the charge flow's ``StreamReader`` port (``domain/ports.py``) as they are: no wrapper per stream.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.ports import UpstreamFailure
from ledgergate.domain.pricing import Usage
from ledgergate.upstream.usage import usage_from_response

DONE_EVENT = b"data: [DONE]\n\n"

# SSE accepts CRLF, CR and LF line endings; a CR at the end of a buffer may be half of a CRLF.
_LINE_END = re.compile(rb"\r\n|\r|\n")
_DONE_PAYLOAD = b"[DONE]"


def _delta_pieces(choice: Any) -> list[str]:
    """The generated text of one streamed choice: content, reasoning, refusal and tool-call arguments."""
    if not isinstance(choice, dict):
        return []
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return []
    pieces = [delta.get(key) for key in ("content", "reasoning_content", "refusal")]
    tool_calls = delta.get("tool_calls")
    if isinstance(tool_calls, list):
        for call in tool_calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                pieces.append(function.get("arguments"))
    function_call = delta.get("function_call")
    if isinstance(function_call, dict):
        pieces.append(function_call.get("arguments"))
    return [piece for piece in pieces if isinstance(piece, str) and piece]


class StreamTracker:
    """Fed raw upstream bytes in arbitrary pieces; returns the bytes to forward and records what it saw."""

    def __init__(self, *, strip_usage_chunk: bool, hold_back_done: bool = True) -> None:
        self._strip_usage_chunk = strip_usage_chunk
        self._hold_back_done = hold_back_done
        self._pending = bytearray()  # received bytes not yet split into lines
        self._event = bytearray()  # raw lines of the event being assembled
        self._data_lines: list[bytes] = []
        self._usage: Usage | None = None
        self._content_chunks = 0
        self._content_bytes = 0
        self._done_seen = False

    @property
    def usage(self) -> Usage | None:
        """The last usage object the stream carried (providers may repeat a running total)."""
        return self._usage

    @property
    def content_chunks(self) -> int:
        """Chunks that carried generated text: a lower bound on completion tokens if usage never arrives."""
        return self._content_chunks

    @property
    def content_bytes(self) -> int:
        return self._content_bytes

    @property
    def done_seen(self) -> bool:
        return self._done_seen

    def ending(self) -> tuple[bytes, RequestStatus]:
        """``[DONE]``, re-emitted once the charge is durable; the stream's ledger status."""
        return DONE_EVENT, RequestStatus.SUCCESS

    def error_event(self, failure: UpstreamFailure) -> bytes:
        """A failure after the status line went out, as an OpenAI error chunk."""
        return b"data: " + orjson.dumps(failure.to_openai_error()) + b"\n\n"

    def feed(self, chunk: bytes) -> bytes:
        """Consume ``chunk``; returns the complete events that may be forwarded now (possibly empty)."""
        self._pending += chunk
        out = bytearray()
        start = 0
        pending = self._pending
        while True:
            match = _LINE_END.search(pending, start)
            if match is None:
                break
            if match.group() == b"\r" and match.end() == len(pending):
                break
            self._take_line(bytes(pending[start : match.start()]), bytes(pending[start : match.end()]), out)
            start = match.end()
        del pending[:start]
        return bytes(out)

    def finish(self) -> bytes:
        """End of stream: settle any unterminated line and event; returns what may still be forwarded."""
        out = bytearray()
        if self._pending:
            raw = bytes(self._pending)
            self._pending.clear()
            self._take_line(raw.rstrip(b"\r"), raw, out)
        if self._event:
            self._dispatch(out)
        return bytes(out)

    def _take_line(self, line: bytes, raw: bytes, out: bytearray) -> None:
        self._event += raw
        if not line:
            self._dispatch(out)
        elif line.startswith(b"data:"):
            payload = line[5:]
            self._data_lines.append(payload[1:] if payload.startswith(b" ") else payload)

    def _dispatch(self, out: bytearray) -> None:
        raw_event = bytes(self._event)
        data_lines = self._data_lines
        self._event.clear()
        self._data_lines = []
        if not data_lines:
            out += raw_event  # comments / keep-alives / bare blank lines pass through untouched
            return
        data = b"\n".join(data_lines)
        if data.strip() == _DONE_PAYLOAD:
            self._done_seen = True
            if not self._hold_back_done:
                out += raw_event
            return
        if self._inspect(data):
            out += raw_event

    def _inspect(self, data: bytes) -> bool:
        """Record what the event carries; False when it is the usage-only chunk that must not be forwarded."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(payload, dict):
            return True
        choices = payload.get("choices")
        has_usage = isinstance(payload.get("usage"), dict)
        if has_usage:
            usage = usage_from_response(payload)
            if usage is not None:
                self._usage = usage
        if isinstance(choices, list):
            pieces = [piece for choice in choices for piece in _delta_pieces(choice)]
            if pieces:
                self._content_chunks += 1
                self._content_bytes += sum(len(piece.encode("utf-8", "surrogatepass")) for piece in pieces)
        usage_only = has_usage and not choices
        return not (self._strip_usage_chunk and usage_only)


class ClosingEventTracker(StreamTracker):
    """A tracker for event streams whose final event (``message_stop``, ``response.completed``) must wait
    until the charge is durable: ``_withhold()`` during ``_inspect`` keeps the event being dispatched out of the
    forwarded bytes and in ``closing_event``."""

    def __init__(self) -> None:
        super().__init__(strip_usage_chunk=False, hold_back_done=False)
        self._withholding = False
        self._closing = b""
        self._failed = False

    @property
    def closing_event(self) -> bytes:
        """The withheld final event (empty if the upstream never sent one)."""
        return self._closing

    @property
    def failed(self) -> bool:
        """The upstream reported a failure instead of finishing."""
        return self._failed

    def ending(self) -> tuple[bytes, RequestStatus]:
        """The withheld final event, sent once the charge is durable; ERROR when the upstream reported a failure."""
        return self._closing, RequestStatus.ERROR if self._failed else RequestStatus.SUCCESS

    def _withhold(self) -> None:
        self._withholding = True

    def _dispatch(self, out: bytearray) -> None:
        start = len(out)
        super()._dispatch(out)
        if self._withholding:
            self._withholding = False
            self._closing = bytes(out[start:])
            del out[start:]

    @staticmethod
    def _json_object(data: bytes) -> dict[str, Any] | None:
        """The event's JSON object, or None for anything else (forwarded untouched either way)."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        return payload if isinstance(payload, dict) else None
