"""The 429 a refused request gets: LiteLLM's wording (scripts match on it) plus the window or rate limit that
refused."""

from __future__ import annotations

from starlette.responses import Response

from ledgergate.api.errors import error_response
from ledgergate.domain.money import nanos_to_usd
from ledgergate.domain.rate_limits import RateLimited
from ledgergate.services.refusal_messages import rate_limited_message, refusal_message
from ledgergate.services.request_charging import Refusal
from ledgergate.services.retry_hints import budget_retry_hint, rate_limit_retry_hint
from ledgergate.services.views import iso_time


def refusal_response(refusal: Refusal, now_s: float) -> Response:
    """429 ``budget_exceeded`` with ``x-should-retry`` and ``retry-after`` (services/retry_hints.py)."""
    reset_at = iso_time(refusal.reset_at_s) if refusal.window.duration else None
    return error_response(
        429,
        refusal_message(refusal),
        "budget_exceeded",
        None,
        headers=budget_retry_hint(refusal, now_s).headers(),
        entity=refusal.entity.type.value,
        entity_id=refusal.entity.id,
        budget_duration=refusal.window.label if refusal.window.duration else None,
        model=refusal.window.model,
        spend=nanos_to_usd(refusal.state.spent_nanos),
        max_budget=nanos_to_usd(refusal.window.max_budget_nanos or 0),
        reset_at=reset_at,
    )


def rate_limited_response(refused: RateLimited) -> Response:
    """429 ``rate_limit_exceeded`` with ``retry-after``: seconds until the minute ends (1 for requests in flight),
    and ``x-should-retry: true``."""
    return error_response(
        429,
        rate_limited_message(refused),
        "rate_limit_exceeded",
        None,
        headers=rate_limit_retry_hint(refused).headers(),
        entity=refused.entity.type.value,
        entity_id=refused.entity.id,
        limit_type=refused.field.value,
        limit=refused.limit,
        current=refused.state.spent_nanos + refused.state.held_nanos,
        reset_at=iso_time(refused.reset_at_s),
    )


def refused_response(refused: Refusal | RateLimited, now_s: float) -> Response:
    """The 429 of any admission refusal: a budget window's or a rate limit's."""
    if isinstance(refused, RateLimited):
        return rate_limited_response(refused)
    return refusal_response(refused, now_s)
