"""Failures of an upstream call, each knowing the status and OpenAI-style body the gateway replies with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ledgergate.domain.ports import UpstreamFailure

if TYPE_CHECKING:
    from ledgergate.upstream.client import UpstreamReply

# Upstream bodies can be whole HTML error pages; a client needs the gist, not megabytes of markup.
MAX_MESSAGE_CHARS = 2000

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type_for_status(status: int) -> str:
    """The OpenAI error ``type`` a reply of ``status`` most likely corresponds to."""
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def _error_object(message: str, error_type: str, param: Any, code: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


class UpstreamError(UpstreamFailure):
    """Base of every upstream failure; ``status_code`` is what the gateway answers its client with."""

    status_code: int = 502
    error_type: str = "upstream_error"

    def __init__(self, message: str, *, param: Any = None, code: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else str(self.status_code)

    def to_openai_error(self) -> dict[str, Any]:
        return _error_object(self.message, self.error_type, self.param, self.code)


class UpstreamTimeout(UpstreamError):
    """The upstream did not connect, answer or continue streaming within the deployment's timeout."""

    status_code = 504
    error_type = "timeout"


class UpstreamUnavailable(UpstreamError):
    """The upstream could not be reached or dropped the connection (refused, reset, protocol error)."""

    status_code = 502
    error_type = "upstream_unavailable"


class UpstreamHTTPError(UpstreamError):
    """The upstream answered with a non-2xx status; its status and error details are passed through."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        self.status_code = status
        fields = _upstream_error_fields(status, body)
        self.error_type = str(fields["type"])
        super().__init__(str(fields["message"]), param=fields["param"], code=fields["code"])


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _upstream_error_fields(status: int, body: bytes) -> dict[str, Any]:
    """The four OpenAI error fields for an upstream reply, preferring what the upstream itself said."""
    parsed = _parse_json(body)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        return {
            "message": message if isinstance(message, str) else f"upstream returned HTTP {status}",
            "type": error.get("type") or error_type_for_status(status),
            "param": error.get("param"),
            "code": error.get("code") if error.get("code") is not None else str(status),
        }
    if isinstance(error, str) and error:
        text = error
    elif isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        text = parsed["message"]
    else:
        text = body.decode("utf-8", errors="replace").strip()
    text = text[:MAX_MESSAGE_CHARS] or f"upstream returned HTTP {status}"
    return {"message": text, "type": error_type_for_status(status), "param": None, "code": str(status)}


def openai_error_body(reply: UpstreamReply) -> bytes:
    """An OpenAI-style error JSON for a non-2xx reply; an upstream ``error`` object is kept as sent.

    Missing fields of a kept ``error`` object are filled in so every client sees message/type/param/code.
    """
    parsed = _parse_json(reply.body)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(parsed, dict) and isinstance(error, dict):
        missing = [key for key in ("message", "type", "param", "code") if key not in error]
        if not missing:
            return reply.body
        defaults = _upstream_error_fields(reply.status, reply.body)
        for key in missing:
            error[key] = defaults[key]
        return orjson.dumps(parsed)
    fields = _upstream_error_fields(reply.status, reply.body)
    return orjson.dumps({"error": fields})
