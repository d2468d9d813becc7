"""The 429 a refused request gets: LiteLLM's wording (scripts match on it) plus the window or rate limit that
refused."""

from __future__ import annotations

from starlette.responses import Response

from ledgergate.api.errors import error_response
from ledgergate.domain.charging import EntityType
from ledgergate.domain.money import format_usd, nanos_to_usd
from ledgergate.domain.rate_limits import RateLimited, RateLimitField
from ledgergate.services.request_charging import Refusal
from ledgergate.services.retry_hints import budget_retry_hint, rate_limit_retry_hint
from ledgergate.services.views import iso_time

ENTITY_LABEL = {
    EntityType.KEY: "Key",
    EntityType.USER: "User",
    EntityType.TEAM: "Team",
    EntityType.TEAM_MEMBER: "TeamMember",
    EntityType.ORGANIZATION: "Organization",
    EntityType.CUSTOMER: "Customer",
    EntityType.TAG: "Tag",
    EntityType.GLOBAL: "Proxy",
    EntityType.BUDGET: "Budget",
}


def refusal_message(refusal: Refusal) -> str:
    state = refusal.state
    limit = refusal.window.max_budget_nanos or 0
    current = format_usd(state.spent_nanos + state.held_nanos)
    held = f" (incl. {format_usd(state.held_nanos)} held by requests in flight)" if state.held_nanos else ""
    reset_at = iso_time(refusal.reset_at_s) if refusal.window.duration else None
    resets = f", Resets at: {reset_at}" if reset_at else ""
    model = f" model={refusal.window.model}" if refusal.window.model is not None else ""
    return (
        f"Budget has been exceeded! {ENTITY_LABEL[refusal.entity.type]}={refusal.entity_name} "
        f"window={refusal.window.label}{model} Current cost: {current}{held}, Max budget: {format_usd(limit)}{resets}"
    )


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


def rate_limited_message(refused: RateLimited) -> str:
    state = refused.state
    who = f"Rate limit exceeded! {ENTITY_LABEL[refused.entity.type]}={refused.entity_name} {refused.field.value}"
    if refused.field is RateLimitField.PARALLEL:
        return f"{who}={refused.limit} Current: {state.held_nanos} requests in flight"
    unit = "tokens" if refused.field is RateLimitField.TPM else "requests"
    held = ""
    if state.held_nanos:
        in_flight = "requests" if unit == "requests" else "tokens reserved by requests"
        held = f" (incl. {state.held_nanos} {in_flight} in flight)"
    return (
        f"{who}={refused.limit} Current: {state.spent_nanos + state.held_nanos} {unit}{held} in the minute starting "
        f"{iso_time(refused.period_start_s)}, Resets at: {iso_time(refused.reset_at_s)}"
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
