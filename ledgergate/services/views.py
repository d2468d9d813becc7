"""JSON views of entities: every window with its current-period ``spend`` and ``reset_at`` (LiteLLM field names)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.money import nanos_to_usd
from ledgergate.domain.rate_limits import RateLimitField
from ledgergate.domain.windows import FAR_FUTURE_S, UNLIMITED_LIFETIME, Window
from ledgergate.services.directory import Directory
from ledgergate.services.request_charging import RequestCharger

ID_FIELD = {
    EntityType.KEY: "token",
    EntityType.USER: "user_id",
    EntityType.TEAM: "team_id",
    EntityType.TEAM_MEMBER: "member_id",
    EntityType.ORGANIZATION: "organization_id",
    EntityType.CUSTOMER: "user_id",
    EntityType.TAG: "name",
    EntityType.BUDGET: "budget_id",
    EntityType.GLOBAL: "id",
}


def iso_time(epoch_s: float | None) -> str | None:
    if epoch_s is None or epoch_s >= FAR_FUTURE_S:
        return None
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


def usd(nanos: int | None) -> float | None:
    return None if nanos is None else nanos_to_usd(nanos)


def _by_model(windows: Sequence[Window], views: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``model_max_budget`` as sent (``{model: {max_budget, budget_duration}}``), each window with its spend; a
    model's further windows are its ``budget_limits``."""
    by_model: dict[str, dict[str, Any]] = {}
    for window, view in zip(windows, views, strict=True):
        model = window.model or ""
        if model not in by_model:
            by_model[model] = dict(view)
        else:
            by_model[model].setdefault("budget_limits", []).append(view)
    return by_model


class EntityViews:
    def __init__(self, directory: Directory, charger: RequestCharger, lifetime_spend: Any) -> None:
        self._directory = directory
        self._charger = charger
        self._lifetime_spend = lifetime_spend

    async def budget_fields(self, entity: Entity) -> dict[str, Any]:
        """The budget fields of every entity view: spend, max_budget, reset_at, budget_limits, model_max_budget,
        lifetime_spend."""
        primary, limits = await self._directory.effective_budget(entity)
        general = tuple(window for window in limits if window.model is None)
        shown = (primary or UNLIMITED_LIFETIME, *general, *(window for window in limits if window.model))
        states = await self._charger.window_states(entity, shown)
        views = [
            {
                "budget_duration": window.label if window.duration else None,
                "max_budget": usd(window.max_budget_nanos),
                "spend": nanos_to_usd(state.spent_nanos),
                "held": nanos_to_usd(state.held_nanos),
                "reset_at": iso_time(reset_at_s) if window.duration else None,
            }
            for window, (state, reset_at_s) in zip(shown, states, strict=True)
        ]
        lifetime = await self._lifetime_spend(entity.ref)
        return {
            "spend": views[0]["spend"],
            "lifetime_spend": nanos_to_usd(lifetime),
            "max_budget": views[0]["max_budget"],
            "budget_duration": views[0]["budget_duration"],
            "budget_reset_at": views[0]["reset_at"],
            "soft_budget": usd(entity.soft_budget_nanos),
            "budget_limits": views[1 : 1 + len(general)],
            "model_max_budget": _by_model(shown[1 + len(general) :], views[1 + len(general) :]),
            "budget_id": entity.budget_id,
        }

    async def rate_limit_fields(self, entity: Entity) -> dict[str, Any]:
        """``rpm_limit``, ``tpm_limit``, ``max_parallel_requests`` in effect (own, else the shared budget
        object's) and ``rate_limit_usage``: per limit, what the next admission counts (``current``, including
        ``held`` by requests in flight) and when its minute resets. A budget object is a template: no usage."""
        rates = await self._charger.rate_states(entity) if entity.type is not EntityType.BUDGET else []
        limits = await self._charger.rate_limits(entity)
        fields: dict[str, Any] = {field.value: limits.limits.get(field) for field in RateLimitField}
        fields["rate_limit_usage"] = {
            rate.field.value: {
                "limit": rate.limit,
                "current": state.spent_nanos + state.held_nanos,
                "held": state.held_nanos,
                "reset_at": iso_time(rate.line.period_end_s) if rate.resets else None,
            }
            for rate, state in rates
        }
        return fields

    async def view(self, entity: Entity) -> dict[str, Any]:
        base: dict[str, Any] = {
            "alias": entity.alias,
            "user_id": entity.user_id,
            "team_id": entity.team_id,
            "organization_id": entity.organization_id,
            "blocked": entity.blocked,
            "expires": iso_time(entity.expires_at_s),
            "tags": list(entity.tags),
            "models": list(entity.models),
            "metadata": dict(entity.metadata),
            "created_at": iso_time(entity.created_at_s),
            "updated_at": iso_time(entity.updated_at_s),
        }
        base.update(entity.extra)
        base.update(await self.budget_fields(entity))
        base.update(await self.rate_limit_fields(entity))
        base[ID_FIELD[entity.type]] = entity.id  # after the generic fields: a user's user_id is its id
        return base
