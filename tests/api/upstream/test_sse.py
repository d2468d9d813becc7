"""StreamTracker: exact pass-through of SSE bytes, whatever the chunking, while tracking usage and content."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ledgergate.domain.pricing import Usage
from ledgergate.upstream.sse import DONE_EVENT, StreamTracker


def _event(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _chunk(content: str | None = None, **delta: Any) -> bytes:
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return _event({"id": "c1", "object": "chat.completion.chunk", "choices": [choice], "usage": None})


USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
USAGE_EVENT = _event({"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": USAGE})
BODY_EVENTS = [_chunk("", role="assistant"), _chunk("Héllo"), _chunk(" wörld"), _chunk("!")]
STREAM = b"".join(BODY_EVENTS) + USAGE_EVENT + DONE_EVENT


def _run(tracker: StreamTracker, pieces: list[bytes]) -> bytes:
    return b"".join(tracker.feed(piece) for piece in pieces) + tracker.finish()


@pytest.mark.parametrize("split_at", range(len(STREAM) + 1))
def test_tracker_forwards_identical_bytes_at_every_split(split_at: int) -> None:
    """Splitting the stream at any byte forwards exactly the input minus [DONE] and records the same facts."""
    tracker = StreamTracker(strip_usage_chunk=False)
    forwarded = _run(tracker, [STREAM[:split_at], STREAM[split_at:]])
    assert forwarded == STREAM[: -len(DONE_EVENT)]
    assert tracker.usage == Usage(prompt_tokens=11, completion_tokens=3)
    assert tracker.done_seen


def test_tracker_handles_byte_by_byte_crlf_stream() -> None:
    """CRLF line endings split between CR and LF are still one line end, and bytes pass unchanged."""
    crlf = STREAM.replace(b"\n", b"\r\n")
    tracker = StreamTracker(strip_usage_chunk=True)
    forwarded = _run(tracker, [crlf[i : i + 1] for i in range(len(crlf))])
    assert forwarded == b"".join(BODY_EVENTS).replace(b"\n", b"\r\n")
    assert tracker.usage == Usage(prompt_tokens=11, completion_tokens=3)
    assert tracker.content_chunks == 3
    assert tracker.done_seen


def test_tracker_strips_usage_only_chunk_when_asked() -> None:
    """With strip_usage_chunk the usage-only chunk is withheld but its usage is still recorded."""
    tracker = StreamTracker(strip_usage_chunk=True)
    forwarded = _run(tracker, [STREAM])
    assert forwarded == b"".join(BODY_EVENTS)
    assert tracker.usage == Usage(prompt_tokens=11, completion_tokens=3)


def test_tracker_keeps_usage_on_content_chunk_even_when_stripping() -> None:
    """Only a chunk with no choices is stripped; a content chunk that also carries usage is forwarded."""
    event = _event({"choices": [{"index": 0, "delta": {"content": "x"}}], "usage": USAGE})
    tracker = StreamTracker(strip_usage_chunk=True)
    assert _run(tracker, [event]) == event
    assert tracker.usage == Usage(prompt_tokens=11, completion_tokens=3)


def test_tracker_holds_back_done_and_can_forward_it() -> None:
    """[DONE] is withheld by default (the gateway sends DONE_EVENT after charging), forwarded on request."""
    held = StreamTracker(strip_usage_chunk=False)
    assert _run(held, [DONE_EVENT]) == b""
    assert held.done_seen
    passed = StreamTracker(strip_usage_chunk=False, hold_back_done=False)
    assert _run(passed, [DONE_EVENT]) == DONE_EVENT


def test_tracker_counts_content_chunks_and_utf8_bytes() -> None:
    """Only chunks with generated text count; bytes are UTF-8 lengths of content and tool-call arguments."""
    tool_call = {"index": 0, "id": "t", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    tracker = StreamTracker(strip_usage_chunk=False)
    _run(tracker, [*BODY_EVENTS, _chunk(tool_calls=[tool_call]), _chunk(None), USAGE_EVENT])
    assert tracker.content_chunks == 4
    assert tracker.content_bytes == len("Héllo wörld!".encode()) + len('{"a":1}')
    assert not tracker.done_seen


def test_tracker_keeps_last_usage_seen() -> None:
    """When usage is repeated as a running total, the final one wins."""
    first = _event({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    last = _event({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 5}})
    tracker = StreamTracker(strip_usage_chunk=False)
    _run(tracker, [first, last])
    assert tracker.usage == Usage(prompt_tokens=1, completion_tokens=5)


def test_tracker_passes_comments_and_unparseable_events_through() -> None:
    """Keep-alive comments, event-type lines and non-JSON data are forwarded untouched and not counted."""
    stream = b": keep-alive\n\nevent: ping\ndata: not json\n\ndata: [1, 2]\n\n"
    tracker = StreamTracker(strip_usage_chunk=True)
    assert _run(tracker, [stream]) == stream
    assert tracker.usage is None
    assert tracker.content_chunks == 0


def test_tracker_feed_returns_only_complete_events() -> None:
    """Nothing of an event is forwarded until its terminating blank line arrives."""
    tracker = StreamTracker(strip_usage_chunk=False)
    event = _chunk("hi")
    assert tracker.feed(event[:-1]) == b""
    assert tracker.feed(event[-1:]) == event


def test_tracker_finish_flushes_unterminated_event() -> None:
    """A final event without its blank line is still inspected and forwarded by finish()."""
    event = _chunk("hi").rstrip(b"\n")
    tracker = StreamTracker(strip_usage_chunk=False)
    assert tracker.feed(event) == b""
    assert tracker.finish() == event
    assert tracker.content_chunks == 1


def test_tracker_finish_recognises_unterminated_done() -> None:
    """A stream ending in ``data: [DONE]`` without a newline still counts as done and is held back."""
    tracker = StreamTracker(strip_usage_chunk=False)
    assert _run(tracker, [b"data: [DONE]"]) == b""
    assert tracker.done_seen
