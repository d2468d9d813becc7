"""A key never has more power than its issuer had when it was issued.

A team admin may issue a key for a plain member and keep its secret. If that key simply followed its user, a
later promotion of the member (admin of another team, proxy admin) would hand those powers to whoever holds the
secret: the team admin. So a key issued (or rebound) by anyone but a proxy admin records a ceiling in its
``extra`` (``issued_by``): the weaker of the issuer's and the user's role, and the teams both could act as admin
of. The principal built from the key is capped by it. Keys without the record follow their user (issued by a
proxy admin, or written before the record existed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ledgergate.domain.entities import Entity
from ledgergate.domain.principals import KeyCeiling, Principal, Role

ISSUED_BY = "issued_by"
# Weakest first: an unknown role in a record counts as the weakest (an altered record must not widen a key).
_ROLE_ORDER = (Role.INTERNAL_USER_VIEWER, Role.INTERNAL_USER, Role.PROXY_ADMIN_VIEWER, Role.PROXY_ADMIN)


def weaker(first: Role, second: Role) -> Role:
    return first if _ROLE_ORDER.index(first) <= _ROLE_ORDER.index(second) else second


def stored_role(user: Entity | None) -> Role:
    """A user's ``user_role``; missing or unknown is ``internal_user`` (what a key without a user acts as)."""
    if user is None:
        return Role.INTERNAL_USER
    try:
        return Role(str(user.extra.get("user_role") or Role.INTERNAL_USER.value))
    except ValueError:
        return Role.INTERNAL_USER


def ceiling_of(key: Entity) -> KeyCeiling | None:
    record = key.extra.get(ISSUED_BY)
    if record is None:
        return None
    if not isinstance(record, Mapping):
        return KeyCeiling(Role.INTERNAL_USER_VIEWER)
    try:
        role = Role(str(record.get("role")))
    except ValueError:
        role = Role.INTERNAL_USER_VIEWER
    teams = record.get("team_admin_of")
    team_ids = frozenset(t for t in teams if isinstance(t, str)) if isinstance(teams, list) else frozenset()
    return KeyCeiling(role, team_ids)


def ceiling_record(ceiling: KeyCeiling) -> dict[str, Any]:
    return {"role": ceiling.role.value, "team_admin_of": sorted(ceiling.team_admin_of)}


def issue_ceiling(issuer: Principal, user: Entity | None, user_admin_team_ids: Iterable[str]) -> KeyCeiling:
    """What a key issued by ``issuer`` for ``user`` may do: ``user_admin_team_ids`` are the teams the user is an
    admin of that the issuer may act as admin of too (the caller works that out; this is the record's shape)."""
    role = weaker(issuer.role, stored_role(user))
    if issuer.ceiling is not None:
        role = weaker(role, issuer.ceiling.role)
    return KeyCeiling(role, frozenset(user_admin_team_ids))


def principal_of_key(key: Entity, user: Entity | None) -> Principal:
    """The principal a valid key acts as: its user's role, capped by the key's ceiling when it has one."""
    ceiling = ceiling_of(key)
    role = stored_role(user)
    if ceiling is not None:
        role = weaker(role, ceiling.role)
    return Principal(role, key, ceiling=ceiling)
