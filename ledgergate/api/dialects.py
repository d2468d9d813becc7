"""How each LLM route kind reads its requests and what it sends upstream: OpenAI chat completions, embeddings and
responses, Anthropic messages. How their replies and streams are read is the ``ReplyReading`` port
(``domain/ports.py``; adapters ``upstream/reply_readings.py``, wired by ``app.py``); the charge flow they share is
``services/charge_flow.py``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ledgergate.api.asgi_io import HttpRequest
from ledgergate.api.llm_request import (
    ParsedRequest,
    parse_llm_request,
    parse_messages_request,
    parse_responses_request,
)
from ledgergate.deployments import Deployment
from ledgergate.domain.output_caps import chat_cap_field

ANTHROPIC_VERSION = "2023-06-01"  # sent upstream when the client names none
_FORWARDED_ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta")


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one route kind's requests are read and sent; the admission and charge flow is shared."""

    route: str  # the ledger's route (``call_type`` in spend logs); names its ``ReplyReading``
    path: str  # appended to the deployment's ``api_base``
    parse: Callable[[HttpRequest], ParsedRequest]
    inject_usage: bool = False  # chat: ask for the usage chunk with ``stream_options``
    # The output-cap field sent upstream when the client sent none (None: the route produces no output tokens).
    cap_field: Callable[[Deployment], str] | None = None
    unsupported: Callable[[Deployment], str | None] | None = None  # why a deployment cannot serve this route
    protocol_headers: Callable[[HttpRequest, Deployment], Mapping[str, str]] | None = None  # replace Bearer auth


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


CHAT_COMPLETIONS = Dialect(
    route="chat.completions",
    path="/chat/completions",
    parse=parse_llm_request,
    inject_usage=True,
    cap_field=lambda deployment: chat_cap_field(deployment.base_model or deployment.upstream_model),
)
EMBEDDINGS = dataclasses.replace(
    CHAT_COMPLETIONS, route="embeddings", path="/embeddings", inject_usage=False, cap_field=None
)
ANTHROPIC_MESSAGES = Dialect(
    route="messages",
    path="/messages",
    parse=parse_messages_request,
    unsupported=_needs_anthropic,
    protocol_headers=_anthropic_headers,
    cap_field=lambda deployment: "max_tokens",
)
RESPONSES = Dialect(
    route="responses",
    path="/responses",
    parse=parse_responses_request,
    unsupported=_needs_openai,
    cap_field=lambda deployment: "max_output_tokens",
)
DIALECTS = (CHAT_COMPLETIONS, EMBEDDINGS, ANTHROPIC_MESSAGES, RESPONSES)
