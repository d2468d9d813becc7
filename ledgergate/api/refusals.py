"""The 429 a refused request gets: LiteLLM's wording (scripts match on it) plus the window that refused."""

from __future__ import annotations

from starlette.responses import Response

from ledgergate.api.errors import error_response
from ledgergate.domain.charging import EntityType
from ledgergate.domain.money import format_usd, nanos_to_usd
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
    return (
        f"Budget has been exceeded! {ENTITY_LABEL[refusal.entity.type]}={refusal.entity_name} "
        f"window={refusal.window.label} Current cost: {current}{held}, Max budget: {format_usd(limit)}{resets}"
    )


def refusal_response(refusal: Refusal) -> Response:
    reset_at = iso_time(refusal.reset_at_s) if refusal.window.duration else None
    return error_response(
        429,
        refusal_message(refusal),
        "budget_exceeded",
        None,
        entity=refusal.entity.type.value,
        entity_id=refusal.entity.id,
        budget_duration=refusal.window.label if refusal.window.duration else None,
        spend=nanos_to_usd(refusal.state.spent_nanos),
        max_budget=nanos_to_usd(refusal.window.max_budget_nanos or 0),
        reset_at=reset_at,
    )
