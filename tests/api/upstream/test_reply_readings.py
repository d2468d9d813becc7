"""Each route kind's ``ReplyReading`` (upstream/reply_readings.py): what the LLM routes read from replies and
streams since issue 13 moved it out of ``api/dialects.py``. Same bytes, same statuses, one new reader per stream."""

from __future__ import annotations

import orjson
import pytest

from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.ports import ReplyReading
from ledgergate.domain.pricing import Usage
from ledgergate.upstream.errors import UpstreamTimeout, UpstreamUnavailable
from ledgergate.upstream.reply_readings import ANTHROPIC_MESSAGES, OPENAI_CHAT, OPENAI_RESPONSES, REPLY_READINGS
from ledgergate.upstream.sse import DONE_EVENT

CONTENT_CHUNK = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
USAGE_CHUNK = b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n'


def _event(kind: str, **payload: object) -> bytes:
    return f"event: {kind}\n".encode() + b"data: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


def test_the_reply_readings_cannot_be_replaced_at_run_time() -> None:
    """Attack: code that rebinds a route kind's reading (say, to one that reports no usage) after start-up."""
    with pytest.raises(TypeError):
        REPLY_READINGS["chat.completions"] = ANTHROPIC_MESSAGES  # type: ignore[index]


@pytest.mark.parametrize("reading", [OPENAI_CHAT, ANTHROPIC_MESSAGES, OPENAI_RESPONSES])
def test_each_stream_gets_its_own_reader_so_concurrent_streams_never_mix_usage(reading: ReplyReading) -> None:
    """Attack: two concurrent streams sharing one reader would charge one the other's usage and content."""
    first, second = reading.stream_reader(True), reading.stream_reader(True)
    assert first is not second
    first.feed(CONTENT_CHUNK + _event("content_block_delta", delta={"text": "hi"}))
    first.feed(_event("response.output_text.delta", delta="hi"))
    assert first.content_bytes > 0 and second.content_bytes == 0 and second.usage is None


@pytest.mark.parametrize(("client_wants_usage", "forwarded"), [(True, USAGE_CHUNK), (False, b"")])
def test_chat_reader_forwards_the_usage_chunk_only_to_a_client_that_asked(
    client_wants_usage: bool, forwarded: bytes
) -> None:
    """The gateway asks for usage itself (stream_options); a client that did not ask never sees that chunk, and
    both are charged it."""
    reader = OPENAI_CHAT.stream_reader(client_wants_usage)
    assert reader.feed(CONTENT_CHUNK + USAGE_CHUNK + DONE_EVENT) == CONTENT_CHUNK + forwarded
    assert reader.usage == Usage(prompt_tokens=5, completion_tokens=2)
    assert reader.ending() == (DONE_EVENT, RequestStatus.SUCCESS)


def test_closing_events_are_withheld_until_the_ending_and_an_upstream_failure_is_an_error_status() -> None:
    """message_stop / response.completed reach the client only through ``ending`` (after the charge is durable);
    a stream the upstream ended with response.failed is recorded as an error."""
    messages = ANTHROPIC_MESSAGES.stream_reader(False)
    stop = _event("message_stop")
    assert messages.feed(stop) == b""
    assert messages.ending() == (stop, RequestStatus.SUCCESS)
    responses = OPENAI_RESPONSES.stream_reader(False)
    failed = _event("response.failed", response={"usage": {"input_tokens": 3, "output_tokens": 1}})
    assert responses.feed(failed) == b""
    assert responses.ending() == (failed, RequestStatus.ERROR)
    assert responses.usage == Usage(prompt_tokens=3, completion_tokens=1)


def test_a_stream_cut_before_its_closing_event_ends_with_nothing_to_send() -> None:
    """Attack: an upstream that stops mid-stream. No invented closing event; the status stays success (the flow
    charges what was streamed)."""
    for reading in (ANTHROPIC_MESSAGES, OPENAI_RESPONSES):
        assert reading.stream_reader(False).ending() == (b"", RequestStatus.SUCCESS)


def test_error_events_keep_each_route_kinds_wire_format() -> None:
    """A failure after the status line went out is written as an event the client's SDK of that kind parses."""
    timeout = UpstreamTimeout("upstream timed out after 5s")
    assert OPENAI_CHAT.stream_reader(True).error_event(timeout) == (
        b'data: {"error":{"message":"upstream timed out after 5s","type":"timeout","param":null,"code":"504"}}\n\n'
    )
    assert ANTHROPIC_MESSAGES.stream_reader(True).error_event(timeout) == (
        b'event: error\ndata: {"type":"error","error":{"type":"timeout","message":"upstream timed out after 5s"}}\n\n'
    )
    gone = UpstreamUnavailable("connection reset")
    assert OPENAI_RESPONSES.stream_reader(True).error_event(gone) == (
        b'event: error\ndata: {"type":"error","code":"502","message":"connection reset","param":null}\n\n'
    )


def test_replies_are_read_per_route_kind() -> None:
    """Usage of a complete reply in each kind's shape; without usage, the generated text's bytes bound output."""
    assert OPENAI_CHAT.reply_usage({"usage": {"prompt_tokens": 4, "completion_tokens": 1}}) == Usage(4, 1)
    assert ANTHROPIC_MESSAGES.reply_usage({"usage": {"input_tokens": 4, "output_tokens": 1}}) == Usage(4, 1)
    assert OPENAI_RESPONSES.reply_usage({"usage": {"input_tokens": 4, "output_tokens": 1}}) == Usage(4, 1)
    assert OPENAI_CHAT.reply_usage({"usage": {"prompt_tokens": -1}}) is None  # malformed: the flow estimates
    assert OPENAI_CHAT.output_bytes({"choices": [{"message": {"content": "héllo"}}]}) == 6
    assert ANTHROPIC_MESSAGES.output_bytes({"content": [{"type": "text", "text": "abc"}]}) == 3
    assert OPENAI_RESPONSES.output_bytes({"output": [{"content": [{"text": "abcd"}]}]}) == 4
    assert OPENAI_CHAT.output_bytes("not a reply") == 0
