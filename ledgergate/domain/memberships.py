"""Team membership as recorded on the team (``members_with_roles``, LiteLLM's shape): what authorization reads."""

from __future__ import annotations

from typing import Any

from ledgergate.domain.entities import Entity

TEAM_ADMIN = "admin"
TEAM_USER = "user"
MEMBER_ROLES = (TEAM_ADMIN, TEAM_USER)


def members_of(team: Entity) -> list[dict[str, Any]]:
    members = team.extra.get("members_with_roles") or []
    return [dict(m) for m in members if isinstance(m, dict)]


def role_in_team(team: Entity, user_id: str | None) -> str | None:
    """The user's role in ``team`` (``admin`` or ``user``), ``None`` for a non-member."""
    if user_id is None:
        return None
    for member in members_of(team):
        if member.get("user_id") == user_id:
            role = member.get("role")
            return role if isinstance(role, str) else TEAM_USER
    return None
