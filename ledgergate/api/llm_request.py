"""Reading an LLM request: the few fields governance needs, without re-serialising bodies it need not touch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ledgergate.api.asgi_io import HttpRequest
from ledgergate.api.errors import ApiError
from ledgergate.domain.output_caps import OUTPUT_CAP_FIELDS, cap_fields_to_send, largest_cap


@dataclass(slots=True)
class ParsedRequest:
    body: bytes
    payload: dict[str, Any]
    model: str
    stream: bool
    n: int
    output_caps: dict[str, int]  # every output-cap field the client sent (max_tokens, max_completion_tokens, ...)
    customer_id: str | None
    client_tags: tuple[str, ...]
    client_wants_usage: bool
    best_of: int | None = None

    @property
    def requested_max_tokens(self) -> int | None:
        """The largest cap the client sent: the one an upstream could honour, so the one that sizes the hold."""
        return largest_cap(self.output_caps)


def _positive_int(payload: dict[str, Any], field: str) -> int | None:
    value = payload.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, f"{field}: must be a positive integer, got {value!r}", "invalid_request_error", field)
    return value


def _output_caps(payload: dict[str, Any]) -> dict[str, int]:
    """Every output-cap field present, each a positive integer or a 400 naming it."""
    caps = {field: _positive_int(payload, field) for field in OUTPUT_CAP_FIELDS}
    return {field: value for field, value in caps.items() if value is not None}


MAX_IDENTIFIER_CHARS = 255  # what the ledger's id columns hold on every database


def _identifier(value: str, field: str) -> str:
    """Customer ids and tags become ledger keys: bounded, printable, or a 400 (never a failed ledger write)."""
    if len(value) > MAX_IDENTIFIER_CHARS or not value.isprintable():
        raise ApiError(
            400,
            f"{field}: must be at most {MAX_IDENTIFIER_CHARS} printable characters",
            "invalid_request_error",
            field,
        )
    return value


def _client_tags(request: HttpRequest, payload: dict[str, Any]) -> tuple[str, ...]:
    tags: list[str] = []
    metadata = payload.get("metadata")
    if isinstance(metadata, dict):
        body_tags = metadata.get("tags")
        if isinstance(body_tags, list):
            tags.extend(tag for tag in body_tags if isinstance(tag, str) and tag)
    header = request.headers.get("x-ledgergate-tags")
    if header:
        tags.extend(tag.strip() for tag in header.split(",") if tag.strip())
    return tuple(_identifier(tag, "metadata.tags") for tag in tags)


def _read_object(request: HttpRequest) -> tuple[bytes, dict[str, Any], str]:
    """The body, its JSON object and its ``model``, or a 400."""
    body = request.body
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", "invalid_request_error") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object", "invalid_request_error")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model: required, a string naming a configured model", "invalid_request_error", "model")
    return body, payload, model


def _customer(value: Any, field: str) -> str | None:
    return _identifier(value, field) if isinstance(value, str) and value else None


def parse_llm_request(request: HttpRequest) -> ParsedRequest:
    """An OpenAI chat completions or embeddings request."""
    body, payload, model = _read_object(request)
    stream = payload.get("stream") is True
    n = _positive_int(payload, "n") or 1
    user = payload.get("user")
    stream_options = payload.get("stream_options")
    wants_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return ParsedRequest(
        body=body,
        payload=payload,
        model=model,
        stream=stream,
        n=n,
        output_caps=_output_caps(payload),
        customer_id=_customer(user, "user"),
        client_tags=_client_tags(request, payload),
        client_wants_usage=wants_usage,
        best_of=_positive_int(payload, "best_of"),
    )


def parse_messages_request(request: HttpRequest) -> ParsedRequest:
    """An Anthropic Messages request: ``max_tokens`` is required there, and the end user is ``metadata.user_id``."""
    body, payload, model = _read_object(request)
    output_caps = _output_caps(payload)
    if "max_tokens" not in output_caps:
        raise ApiError(400, "max_tokens: required, a positive integer", "invalid_request_error", "max_tokens")
    metadata = payload.get("metadata")
    return ParsedRequest(
        body=body,
        payload=payload,
        model=model,
        stream=payload.get("stream") is True,
        n=1,
        output_caps=output_caps,
        customer_id=_customer(metadata.get("user_id"), "metadata.user_id") if isinstance(metadata, dict) else None,
        client_tags=_client_tags(request, payload),
        client_wants_usage=False,
    )


def parse_responses_request(request: HttpRequest) -> ParsedRequest:
    """An OpenAI Responses request: the output cap is ``max_output_tokens``."""
    body, payload, model = _read_object(request)
    if payload.get("background") is True:
        # The reply carries no usage (the response runs later and is polled): its cost could not be charged.
        raise ApiError(
            400,
            "background: background responses are not supported by this gateway",
            "invalid_request_error",
            "background",
        )
    return ParsedRequest(
        body=body,
        payload=payload,
        model=model,
        stream=payload.get("stream") is True,
        n=1,
        output_caps=_output_caps(payload),
        customer_id=_customer(payload.get("user"), "user"),
        client_tags=_client_tags(request, payload),
        client_wants_usage=False,
    )


def upstream_body(
    parsed: ParsedRequest,
    upstream_model: str,
    max_tokens_to_send: int | None,
    inject_usage: bool,
    cap_field: str | None = None,
) -> bytes:
    """The body sent upstream: the client's bytes unless something must change (model name, cap, usage).

    ``max_tokens_to_send`` is the cap the hold paid for: no output-cap field may allow more, and ``cap_field``
    carries it when the client sent none."""
    changes: dict[str, Any] = {}
    if upstream_model != parsed.model:
        changes["model"] = upstream_model
    if max_tokens_to_send is not None:
        changes.update(cap_fields_to_send(parsed.output_caps, cap_field, max_tokens_to_send))
    if inject_usage and not parsed.client_wants_usage:
        options = parsed.payload.get("stream_options")
        changes["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    if not changes:
        return parsed.body
    return orjson.dumps({**parsed.payload, **changes})
