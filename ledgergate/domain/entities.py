"""Admin-managed entities: one shape for keys, users, teams, members, organizations, customers, tags, budgets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.rate_limits import RateLimits
from ledgergate.domain.windows import Window


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity as stored. Its windows are its own; a ``budget_id`` adds a shared budget object's windows."""

    type: EntityType
    id: str
    primary_window: Window | None = None  # max_budget [+ budget_duration]
    budget_limits: tuple[Window, ...] = ()  # further concurrent windows
    soft_budget_nanos: int | None = None
    budget_id: str | None = None
    alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    blocked: bool = False
    expires_at_s: float | None = None
    tags: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # entity-specific fields (user_role, members, ...)
    created_at_s: float = 0.0
    updated_at_s: float = 0.0
    version: int = 1
    # Typed once per entity object from ``extra`` (rpm_limit, tpm_limit, max_parallel_requests), not per request.
    rate_limits: RateLimits = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate_limits", RateLimits.of(self.extra))

    @property
    def windows(self) -> tuple[Window, ...]:
        if self.primary_window is None:
            return self.budget_limits
        return (self.primary_window, *self.budget_limits)

    @property
    def ref(self) -> EntityRef:
        return EntityRef(self.type, self.id)

    def display_name(self) -> str:
        return self.alias or self.id

    def is_expired(self, now_s: float) -> bool:
        return self.expires_at_s is not None and now_s >= self.expires_at_s

    def allows_model(self, model: str) -> bool:
        """An empty list allows every model (LiteLLM semantics); ``all-proxy-models`` does too."""
        return not self.models or model in self.models or "all-proxy-models" in self.models

    def updated(self, **changes: Any) -> Entity:
        return replace(self, **changes)
