"""The input bound of an LLM request, checked before anything is held (``domain/input_bounds.py`` decides it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ledgergate.deployments import Deployment
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.input_bounds import input_tokens_bound

# orjson reads 1,024 levels but writes only 254: a deeper body whose cap or model the gateway rewrites would fail
# after its hold was placed. Fewer brackets than this cannot nest that deep, so ordinary bodies skip the check.
_MAX_WRITABLE_DEPTH = 254


def request_input_bound(body: bytes, payload: Mapping[str, Any], deployment: Deployment) -> int:
    """The most input tokens the request can be billed on ``deployment``; ``InvalidInput`` (a 400 naming the
    field) when it has none or the gateway could not forward it as read."""
    if body.count(b"[") + body.count(b"{") > _MAX_WRITABLE_DEPTH:
        try:
            orjson.dumps(payload)  # a C pass, cheaper than walking the request in Python
        except TypeError as exc:
            raise InvalidInput(
                "body", f"must not nest arrays and objects more than {_MAX_WRITABLE_DEPTH} levels deep"
            ) from exc
    return input_tokens_bound(body, payload, deployment.input_limits)
