"""How each LLM route kind reads its requests, replies and streams: OpenAI chat completions, embeddings and
responses, Anthropic messages. The charge flow they share is ``services/charge_flow.py``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from ledgergate.api.asgi_io import HttpRequest
from ledgergate.api.llm_request import (
    ParsedRequest,
    parse_llm_request,
    parse_messages_request,
    parse_responses_request,
)
from ledgergate.deployments import Deployment
from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.output_caps import chat_cap_field
from ledgergate.domain.ports import UpstreamFailure
from ledgergate.domain.pricing import Usage
from ledgergate.upstream.anthropic_sse import AnthropicStreamTracker
from ledgergate.upstream.responses_sse import ResponsesStreamTracker
from ledgergate.upstream.sse import DONE_EVENT, StreamTracker
from ledgergate.upstream.usage import (
    anthropic_output_bytes,
    anthropic_reply_usage,
    chat_output_bytes,
    responses_output_bytes,
    responses_reply_usage,
    usage_from_response,
)

Tracker = TypeVar("Tracker", bound=StreamTracker)

ANTHROPIC_VERSION = "2023-06-01"  # sent upstream when the client names none
_FORWARDED_ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta")


@dataclass(frozen=True, slots=True)
class Dialect(Generic[Tracker]):
    """How one route kind's requests, replies and streams are read; the admission and charge flow is shared."""

    route: str  # the ledger's route (``call_type`` in spend logs)
    path: str  # appended to the deployment's ``api_base``
    parse: Callable[[HttpRequest], ParsedRequest]
    reply_usage: Callable[[dict[str, Any]], Usage | None]
    output_bytes: Callable[[Any], int]  # bounds the output tokens of a reply without usage
    tracker: Callable[[ParsedRequest], Tracker]
    # What the client gets after the charge is durable, and the stream's ledger status.
    ending: Callable[[Tracker], tuple[bytes, RequestStatus]]
    error_event: Callable[[UpstreamFailure], bytes]  # a failure after the status line went out
    inject_usage: bool = False  # chat: ask for the usage chunk with ``stream_options``
    # The output-cap field sent upstream when the client sent none (None: the route produces no output tokens).
    cap_field: Callable[[Deployment], str] | None = None
    unsupported: Callable[[Deployment], str | None] | None = None  # why a deployment cannot serve this route
    protocol_headers: Callable[[HttpRequest, Deployment], Mapping[str, str]] | None = None  # replace Bearer auth


def _openai_error_event(exc: UpstreamFailure) -> bytes:
    return b"data: " + orjson.dumps(exc.to_openai_error()) + b"\n\n"


def _anthropic_error_event(exc: UpstreamFailure) -> bytes:
    error = {"type": "error", "error": {"type": exc.error_type, "message": exc.message}}
    return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"


def _responses_error_event(exc: UpstreamFailure) -> bytes:
    error = {"type": "error", "code": exc.code, "message": exc.message, "param": exc.param}
    return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"


def _closing(tracker: AnthropicStreamTracker | ResponsesStreamTracker) -> tuple[bytes, RequestStatus]:
    return tracker.closing_event, RequestStatus.ERROR if tracker.failed else RequestStatus.SUCCESS


def _needs_anthropic(deployment: Deployment) -> str | None:
    if deployment.provider == "anthropic":
        return None
    return (
        f"model {deployment.model_name!r} is not an Anthropic-compatible deployment (use /v1/chat/completions for it)"
    )


def _needs_openai(deployment: Deployment) -> str | None:
    if deployment.provider != "anthropic":
        return None
    return (
        f"model {deployment.model_name!r} is an Anthropic deployment, which has no Responses API "
        "(use /v1/messages for it)"
    )


def _anthropic_headers(request: HttpRequest, deployment: Deployment) -> dict[str, str]:
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    for name in _FORWARDED_ANTHROPIC_HEADERS:
        value = request.headers.get(name)
        if value:
            headers[name] = value
    if deployment.api_key:
        headers["x-api-key"] = deployment.api_key
    return headers


CHAT_COMPLETIONS: Dialect[StreamTracker] = Dialect(
    route="chat.completions",
    path="/chat/completions",
    parse=parse_llm_request,
    reply_usage=usage_from_response,
    output_bytes=chat_output_bytes,
    tracker=lambda parsed: StreamTracker(strip_usage_chunk=not parsed.client_wants_usage),
    ending=lambda tracker: (DONE_EVENT, RequestStatus.SUCCESS),
    error_event=_openai_error_event,
    inject_usage=True,
    cap_field=lambda deployment: chat_cap_field(deployment.base_model or deployment.upstream_model),
)
EMBEDDINGS = dataclasses.replace(
    CHAT_COMPLETIONS, route="embeddings", path="/embeddings", inject_usage=False, cap_field=None
)
ANTHROPIC_MESSAGES: Dialect[AnthropicStreamTracker] = Dialect(
    route="messages",
    path="/messages",
    parse=parse_messages_request,
    reply_usage=anthropic_reply_usage,
    output_bytes=anthropic_output_bytes,
    tracker=lambda parsed: AnthropicStreamTracker(),
    ending=_closing,
    error_event=_anthropic_error_event,
    unsupported=_needs_anthropic,
    protocol_headers=_anthropic_headers,
    cap_field=lambda deployment: "max_tokens",
)
RESPONSES: Dialect[ResponsesStreamTracker] = Dialect(
    route="responses",
    path="/responses",
    parse=parse_responses_request,
    reply_usage=responses_reply_usage,
    output_bytes=responses_output_bytes,
    tracker=lambda parsed: ResponsesStreamTracker(),
    ending=_closing,
    error_event=_responses_error_event,
    unsupported=_needs_openai,
    cap_field=lambda deployment: "max_output_tokens",
)
