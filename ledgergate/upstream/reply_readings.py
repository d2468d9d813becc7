"""How each route kind's upstream replies and streams are read: its usage, the output-bytes bound of a reply
without usage, and a stream reader per stream. The ``ReplyReading`` port (``domain/ports.py``) for every route
kind, keyed by the ledger's route (``call_type``); ``app.py`` hands them to the LLM routes (``api/llm_routes.py``),
which never import this package."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ledgergate.domain.ports import ReplyReading
from ledgergate.upstream.anthropic_sse import AnthropicStreamTracker
from ledgergate.upstream.responses_sse import ResponsesStreamTracker
from ledgergate.upstream.sse import StreamTracker
from ledgergate.upstream.usage import (
    anthropic_output_bytes,
    anthropic_reply_usage,
    chat_output_bytes,
    responses_output_bytes,
    responses_reply_usage,
    usage_from_response,
)

# Chat completions and embeddings: the usage-only chunk is forwarded only to a client that asked for it.
OPENAI_CHAT = ReplyReading(
    reply_usage=usage_from_response,
    output_bytes=chat_output_bytes,
    stream_reader=lambda client_wants_usage: StreamTracker(strip_usage_chunk=not client_wants_usage),
)
ANTHROPIC_MESSAGES = ReplyReading(
    reply_usage=anthropic_reply_usage,
    output_bytes=anthropic_output_bytes,
    stream_reader=lambda client_wants_usage: AnthropicStreamTracker(),
)
OPENAI_RESPONSES = ReplyReading(
    reply_usage=responses_reply_usage,
    output_bytes=responses_output_bytes,
    stream_reader=lambda client_wants_usage: ResponsesStreamTracker(),
)

REPLY_READINGS: Mapping[str, ReplyReading] = MappingProxyType(
    {
        "chat.completions": OPENAI_CHAT,
        "embeddings": OPENAI_CHAT,
        "messages": ANTHROPIC_MESSAGES,
        "responses": OPENAI_RESPONSES,
    }
)
