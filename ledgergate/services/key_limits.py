"""Limits a proxy admin set on a key stay a proxy admin's: a team admin may only tighten them.

A team admin manages their team's keys, but a cap, a rate limit, an expiry, a budget object or a tag a proxy admin
put on a key is a limit on the team admin's own team. Like ``blocked_by``, the key records who set them
(``limits_set_by``); on such a key a team admin may lower a limit, never raise, clear or reset it, and may not
delete the key (deleting and reissuing it would drop every limit and block at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledgergate.domain.entities import Entity
from ledgergate.domain.rate_limits import RATE_LIMIT_FIELDS
from ledgergate.domain.windows import Window

LIMITS_SET_BY = "limits_set_by"
PROXY_ADMIN = "proxy_admin"
LIMIT_FIELDS = (
    "max_budget",
    "budget_duration",
    "budget_limits",
    "budget_id",
    "model_max_budget",
    *RATE_LIMIT_FIELDS,
    "models",
    "tags",
    "duration",
)


def record_limits(extra: Mapping[str, Any], fields: Mapping[str, Any], by_proxy_admin: bool) -> dict[str, Any]:
    """``extra`` with ``limits_set_by`` set when a proxy admin writes any limit field (it is never cleared)."""
    if by_proxy_admin and any(name in fields for name in LIMIT_FIELDS):
        return {**extra, LIMITS_SET_BY: PROXY_ADMIN}
    return dict(extra)


def has_proxy_admin_limits(key: Entity) -> bool:
    return key.extra.get(LIMITS_SET_BY) == PROXY_ADMIN


def loosened_limit(before: Entity, after: Entity) -> str | None:
    """The first limit field ``after`` loosens compared with ``before`` (``None``: every limit kept or tightened).

    Models are judged by the models rule (services/authorization.py), which already allows only narrowing."""
    kept = {window.key: window for window in after.windows}
    for window in before.windows:
        if window.max_budget_nanos is None:
            continue
        now = kept.get(window.key)
        if now is None or now.max_budget_nanos is None or now.max_budget_nanos > window.max_budget_nanos:
            return _window_field(before, window)
    if before.budget_id is not None and after.budget_id != before.budget_id:
        return "budget_id"
    for name in RATE_LIMIT_FIELDS:
        limit, now_limit = before.extra.get(name), after.extra.get(name)
        if isinstance(limit, int) and (not isinstance(now_limit, int) or now_limit > limit):
            return name
    if set(before.tags) - set(after.tags):
        return "tags"
    if before.expires_at_s is not None and (after.expires_at_s is None or after.expires_at_s > before.expires_at_s):
        return "duration"
    return None


def _window_field(key: Entity, window: Window) -> str:
    if window.model is not None:
        return "model_max_budget"
    return "max_budget" if window is key.primary_window else "budget_limits"
