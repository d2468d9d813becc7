"""Upstream failures become OpenAI-style error bodies that keep what the upstream said."""

from __future__ import annotations

import orjson

from ledgergate.upstream.client import UpstreamReply
from ledgergate.upstream.errors import (
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
    openai_error_body,
)


def test_upstream_timeout_maps_to_504() -> None:
    """A timeout answers 504 with type "timeout" and the four OpenAI error fields."""
    error = UpstreamTimeout("too slow")
    assert error.status_code == 504
    assert error.to_openai_error() == {
        "error": {"message": "too slow", "type": "timeout", "param": None, "code": "504"}
    }


def test_upstream_unavailable_maps_to_502() -> None:
    """An unreachable upstream answers 502 with type "upstream_unavailable"."""
    error = UpstreamUnavailable("refused")
    assert error.status_code == 502
    assert error.to_openai_error()["error"]["type"] == "upstream_unavailable"


def test_upstream_http_error_keeps_openai_error_fields() -> None:
    """An OpenAI-style upstream error keeps its status, message, type and code."""
    body = orjson.dumps({"error": {"message": "bad model", "type": "invalid_request_error", "code": "x"}})
    error = UpstreamHTTPError(404, body)
    assert error.status_code == 404
    assert error.to_openai_error() == {
        "error": {"message": "bad model", "type": "invalid_request_error", "param": None, "code": "x"}
    }


def test_upstream_http_error_wraps_plain_text() -> None:
    """A non-JSON upstream body becomes the message, typed by status."""
    error = UpstreamHTTPError(503, b"Service Unavailable\n")
    assert error.to_openai_error() == {
        "error": {"message": "Service Unavailable", "type": "api_error", "param": None, "code": "503"}
    }


def test_upstream_http_error_names_status_when_body_empty() -> None:
    """An empty upstream body still yields a useful message."""
    assert UpstreamHTTPError(429, b"").message == "upstream returned HTTP 429"


def test_openai_error_body_keeps_complete_upstream_error_verbatim() -> None:
    """A complete upstream error object is passed on byte for byte."""
    body = b'{"error": {"message": "m", "type": "t", "param": null, "code": "c"}, "extra": 1}'
    assert openai_error_body(UpstreamReply(400, body, "application/json")) == body


def test_openai_error_body_fills_missing_fields() -> None:
    """An upstream error object lacking fields (e.g. Anthropic's) gets param and code added."""
    body = b'{"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}'
    result = orjson.loads(openai_error_body(UpstreamReply(529, body, "application/json")))
    assert result["error"] == {"type": "overloaded_error", "message": "busy", "param": None, "code": "529"}
    assert result["type"] == "error"


def test_openai_error_body_wraps_non_openai_json() -> None:
    """JSON without an error object is normalised, using a string ``error`` as the message."""
    reply = UpstreamReply(500, b'{"error": "boom"}', "application/json")
    assert orjson.loads(openai_error_body(reply)) == {
        "error": {"message": "boom", "type": "api_error", "param": None, "code": "500"}
    }
