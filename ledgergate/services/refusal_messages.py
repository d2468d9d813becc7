"""The text of a refusal: LiteLLM's wording (scripts match on it) plus the window or rate limit that refused. The
LLM routes' 429 and the dashboard's window table say the same thing."""

from __future__ import annotations

from ledgergate.domain.charging import EntityType
from ledgergate.domain.money import format_usd
from ledgergate.domain.rate_limits import RateLimited, RateLimitField
from ledgergate.services.request_charging import Refusal
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
