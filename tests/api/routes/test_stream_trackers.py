"""The Anthropic and Responses stream trackers and reply readers: exact pass-through, usage, withheld ending."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ledgergate.domain.pricing import Usage
from ledgergate.upstream.anthropic_sse import AnthropicStreamTracker
from ledgergate.upstream.responses_sse import ResponsesStreamTracker
from ledgergate.upstream.sse import StreamTracker
from ledgergate.upstream.usage import (
    anthropic_output_bytes,
    anthropic_reply_usage,
    responses_output_bytes,
    responses_reply_usage,
    usage_from_responses,
)


def _event(kind: str, **payload: Any) -> bytes:
    return f"event: {kind}\r\n".encode() + b"data: " + orjson.dumps({"type": kind, **payload}) + b"\r\n\r\n"


START_USAGE = {"input_tokens": 9, "output_tokens": 1, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2}
ANTHROPIC_BODY = [
    _event("message_start", message={"id": "m1", "content": [], "usage": START_USAGE}),
    _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    b": keep-alive comment\n\n",
    _event("ping"),
    _event("content_block_delta", index=0, delta={"type": "text_delta", "text": "Héllo"}),
    _event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "hmm"}),
    _event("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": '{"a": 1}'}),
    _event("content_block_stop", index=0),
    _event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 12}),
]
ANTHROPIC_STOP = _event("message_stop")
ANTHROPIC_STREAM = b"".join(ANTHROPIC_BODY) + ANTHROPIC_STOP

RESPONSE_USAGE = {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 5}, "output_tokens": 7}
RESPONSES_BODY = [
    _event("response.created", response={"id": "r1", "status": "in_progress", "usage": None}),
    _event("response.output_text.delta", item_id="i", delta="Héllo"),
    _event("response.function_call_arguments.delta", item_id="f", delta='{"x"'),
    _event("response.output_text.delta", item_id="i", delta=""),
    _event("response.output_text.done", item_id="i", text="Héllo"),
]
COMPLETED_RESPONSE = {"id": "r1", "status": "completed", "usage": RESPONSE_USAGE}
RESPONSES_COMPLETED = _event("response.completed", response=COMPLETED_RESPONSE)
RESPONSES_STREAM = b"".join(RESPONSES_BODY) + RESPONSES_COMPLETED


def _run(tracker: StreamTracker, pieces: list[bytes]) -> bytes:
    return b"".join(tracker.feed(piece) for piece in pieces) + tracker.finish()


@pytest.mark.parametrize("split_at", range(0, len(ANTHROPIC_STREAM) + 1))
def test_anthropic_tracker_forwards_identical_bytes_at_every_split(split_at: int) -> None:
    """Whatever the chunking, every byte but the message_stop event is forwarded as sent, message_stop is
    withheld byte for byte, and usage adds cache reads and writes back into the prompt."""
    tracker = AnthropicStreamTracker()
    forwarded = _run(tracker, [ANTHROPIC_STREAM[:split_at], ANTHROPIC_STREAM[split_at:]])
    assert forwarded == b"".join(ANTHROPIC_BODY)
    assert tracker.closing_event == ANTHROPIC_STOP
    assert tracker.usage == Usage(prompt_tokens=15, completion_tokens=12, cache_read_tokens=4, cache_write_tokens=2)
    assert tracker.content_chunks == 3
    assert tracker.content_bytes == len("Héllo".encode()) + len("hmm") + len('{"a": 1}')
    assert not tracker.failed


def test_anthropic_tracker_usage_before_message_delta_is_exact_input_and_chunks_seen() -> None:
    """A stream cut before message_delta (client gone) is charged message_start's exact input and at least one
    output token per content delta, never just message_start's placeholder output of 1."""
    tracker = AnthropicStreamTracker()
    tracker.feed(b"".join(ANTHROPIC_BODY[:7]))
    assert tracker.usage == Usage(prompt_tokens=15, completion_tokens=3, cache_read_tokens=4, cache_write_tokens=2)
    assert tracker.closing_event == b""


def test_anthropic_tracker_takes_the_latest_cumulative_counts_from_message_delta() -> None:
    """Newer API versions repeat (cumulative) input counts in message_delta: the latest value of each field wins."""
    tracker = AnthropicStreamTracker()
    delta_usage = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": None}
    tracker.feed(ANTHROPIC_BODY[0] + _event("message_delta", delta={}, usage=delta_usage) + ANTHROPIC_STOP)
    assert tracker.usage == Usage(prompt_tokens=16, completion_tokens=5, cache_read_tokens=4, cache_write_tokens=2)


def test_anthropic_tracker_without_usage_reports_none_and_error_events_mark_failure() -> None:
    """No usage anywhere leaves the estimate to the route; an ``error`` event is forwarded and marks the stream
    failed (no message_stop follows it)."""
    tracker = AnthropicStreamTracker()
    error = _event("error", error={"type": "overloaded_error", "message": "Overloaded"})
    forwarded = _run(tracker, [_event("message_start", message={"id": "m"}), error])
    assert forwarded.endswith(error)
    assert tracker.usage is None and tracker.failed and tracker.closing_event == b""


@pytest.mark.parametrize("split_at", range(0, len(RESPONSES_STREAM) + 1))
def test_responses_tracker_forwards_identical_bytes_at_every_split(split_at: int) -> None:
    """Whatever the chunking, every event but response.completed is forwarded as sent; response.completed is
    withheld byte for byte and its usage recorded (cached tokens included in the prompt)."""
    tracker = ResponsesStreamTracker()
    forwarded = _run(tracker, [RESPONSES_STREAM[:split_at], RESPONSES_STREAM[split_at:]])
    assert forwarded == b"".join(RESPONSES_BODY)
    assert tracker.closing_event == RESPONSES_COMPLETED
    assert tracker.usage == Usage(prompt_tokens=20, completion_tokens=7, cache_read_tokens=5)
    assert tracker.content_chunks == 2
    assert not tracker.failed


@pytest.mark.parametrize(("kind", "failed"), [("response.incomplete", False), ("response.failed", True)])
def test_responses_tracker_withholds_every_terminal_event(kind: str, failed: bool) -> None:
    """response.incomplete (max_output_tokens reached) and response.failed end the stream too: withheld, and
    their usage charged."""
    tracker = ResponsesStreamTracker()
    terminal = _event(kind, response={"id": "r1", "usage": RESPONSE_USAGE})
    assert _run(tracker, [RESPONSES_BODY[0], terminal]) == RESPONSES_BODY[0]
    assert tracker.closing_event == terminal
    assert tracker.usage is not None and tracker.usage.completion_tokens == 7
    assert tracker.failed is failed


def test_responses_usage_rejects_malformed_counts_and_clamps_cached() -> None:
    """Malformed counts are not billable (None, so the route estimates); cached tokens never exceed the prompt."""
    assert usage_from_responses({"input_tokens": 3, "output_tokens": True}) is None
    assert usage_from_responses({"input_tokens": 3, "output_tokens": 1, "input_tokens_details": 5}) is None
    over_cached = {"input_tokens": 3, "output_tokens": 1, "input_tokens_details": {"cached_tokens": 9}}
    clamped = usage_from_responses(over_cached)
    assert clamped == Usage(prompt_tokens=3, completion_tokens=1, cache_read_tokens=3)
    assert responses_reply_usage({"usage": None}) is None
    assert anthropic_reply_usage({"usage": {"input_tokens": 2, "output_tokens": 3}}) == Usage(2, 3)


def test_reply_output_bytes_bound_generated_text_of_replies_without_usage() -> None:
    """Without usage, every kind of generated output counts toward the estimate: text, thinking, tool calls."""
    message = {
        "content": [
            {"type": "text", "text": "héllo"},
            {"type": "thinking", "thinking": "abc"},
            {"type": "tool_use", "input": {"a": 1}},
        ]
    }
    assert anthropic_output_bytes(message) == len("héllo".encode()) + 3 + len(b'{"a":1}')
    response = {
        "output": [
            {"type": "message", "content": [{"type": "output_text", "text": "hé"}]},
            {"type": "function_call", "arguments": '{"b":2}'},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "why"}]},
        ]
    }
    assert responses_output_bytes(response) == len("hé".encode()) + len('{"b":2}') + 3
    assert anthropic_output_bytes([]) == responses_output_bytes(None) == 0
