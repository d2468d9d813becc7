"""Applying the budget fields every entity accepts (max_budget, budget_duration, budget_limits, soft_budget,
alert_thresholds) and those of keys and teams (model_max_budget)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledgergate.domain.alerts import parse_alert_thresholds
from ledgergate.domain.entities import Entity
from ledgergate.domain.rate_limits import RATE_LIMIT_FIELDS, parse_rate_limit
from ledgergate.domain.windows import ensure_distinct, parse_max_budget, parse_model_max_budget, parse_windows

BUDGET_FIELDS = (
    "max_budget",
    "budget_duration",
    "budget_limits",
    "model_max_budget",
    "soft_budget",
    "alert_thresholds",
)


def apply_budget_fields(entity: Entity, fields: Mapping[str, Any]) -> Entity:
    """Return ``entity`` with the budget fields present in ``fields`` applied (absent ones unchanged).

    ``max_budget: null`` removes the primary window; the result is validated as a whole (no duplicates).
    Model windows (``model_max_budget``) are kept in ``budget_limits`` after the others; each of the two fields
    replaces only its own windows.
    """
    primary = entity.primary_window
    limits = tuple(window for window in entity.budget_limits if window.model is None)
    model_windows = tuple(window for window in entity.budget_limits if window.model is not None)
    if "max_budget" in fields or "budget_duration" in fields:
        max_budget = fields.get("max_budget", _usd_or_none(primary.max_budget_nanos) if primary else None)
        duration = fields.get("budget_duration", primary.duration.text if primary and primary.duration else None)
        primary, _ = parse_windows(max_budget, duration)
    if "budget_limits" in fields:
        _, limits = parse_windows(budget_limits=fields["budget_limits"])
    if "model_max_budget" in fields:
        model_windows = parse_model_max_budget(fields["model_max_budget"])
    limits += model_windows
    ensure_distinct([primary, *limits] if primary else list(limits), "budget_limits")
    soft = entity.soft_budget_nanos
    if "soft_budget" in fields:
        value = fields["soft_budget"]
        soft = None if value is None else parse_max_budget(value, "soft_budget")
    extra = entity.extra
    if "alert_thresholds" in fields:
        # Kept in extra (no column): null removes the entity's own list, so the gateway's default applies.
        value = fields["alert_thresholds"]
        extra = {name: item for name, item in extra.items() if name != "alert_thresholds"}
        if value is not None:
            extra["alert_thresholds"] = list(parse_alert_thresholds(value))
    for name in RATE_LIMIT_FIELDS:  # rpm_limit, tpm_limit, max_parallel_requests
        if name in fields:
            # Kept in extra too; null removes the entity's own limit, so its shared budget object's applies.
            limit = parse_rate_limit(fields[name], name)
            extra = {key: item for key, item in extra.items() if key != name}
            if limit is not None:
                extra[name] = limit
    return entity.updated(primary_window=primary, budget_limits=limits, soft_budget_nanos=soft, extra=extra)


def _usd_or_none(nanos: int | None) -> str | None:
    if nanos is None:
        return None
    return f"{nanos // 1_000_000_000}.{nanos % 1_000_000_000:09d}"
