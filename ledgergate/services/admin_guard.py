"""Loads what ``authorize`` needs for an admin change and asks it; a refusal is ``Forbidden`` (403). The admin API
and the dashboard both go through here, so a write is authorised the same way whichever edge it comes from. The
rules themselves are in ``services/authorization.py``, nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.principals import KeyCeiling, Principal
from ledgergate.services.authorization import (
    Action,
    Everything,
    KeyChange,
    KeyReset,
    MemberChange,
    Target,
    TeamScope,
    UserChange,
    authorize,
    key_ceiling_for,
    user_role,
)
from ledgergate.services.directory import Directory
from ledgergate.services.entities import DEFAULT_USER_ROLE
from ledgergate.services.errors import Forbidden, NotFound
from ledgergate.services.teams import TeamService


def require(caller: Principal, action: Action, target: Target | None = None) -> None:
    denied = authorize(caller, action, target if target is not None else Everything())
    if denied is not None:
        raise Forbidden(denied.reason, denied.param)


class AdminGuard:
    def __init__(self, directory: Directory, teams: TeamService) -> None:
        self._directory = directory
        self._teams = teams

    async def team_or_none(self, team_id: str | None) -> Entity | None:
        return await self._directory.get(EntityType.TEAM, team_id) if team_id else None

    async def require_team(self, caller: Principal, action: Action, team_id: str | None) -> None:
        require(caller, action, TeamScope(await self.team_or_none(team_id)))

    async def _team_ids_of(self, user_id: str) -> frozenset[str]:
        return frozenset(team.id for team in await self._teams.teams_of(user_id))

    async def require_key_change(
        self, caller: Principal, action: Action, before: Entity | None, after: Entity
    ) -> KeyCeiling | None:
        """Load the teams and users a key change involves and ask ``authorize``; return the ceiling the key records
        when it is created or rebound by this caller (domain/key_ceilings.py)."""
        teams: dict[str, Entity] = {}
        for team_id in {after.team_id, before.team_id if before else None} - {None}:
            team = await self._directory.get(EntityType.TEAM, str(team_id))
            if team is not None:
                teams[team.id] = team
        bound_user = await self._directory.get(EntityType.USER, after.user_id) if after.user_id else None
        before_user = None
        if before is not None and before.user_id:
            before_user = await self._directory.get(EntityType.USER, before.user_id)
        bound_teams = await self._teams.teams_of(bound_user.id) if bound_user is not None else []
        bound_team_ids = frozenset(team.id for team in bound_teams)
        require(caller, action, KeyChange(before, after, teams, bound_user, bound_team_ids, before_user))
        return key_ceiling_for(caller, bound_user, bound_teams)

    async def require_key_reset(self, caller: Principal, key: Entity) -> None:
        require(caller, Action.KEY_RESET_SPEND, KeyReset(key, await self.team_or_none(key.team_id)))

    async def require_member_change(
        self, caller: Principal, team_id: str, member: Mapping[str, Any], role_after: str | None
    ) -> None:
        """``role_after``: the member's role after the change (``None``: removed)."""
        team = await self.team_or_none(team_id)
        if team is None:
            if caller.is_admin:
                raise NotFound(f"team {team_id!r} not found", param="team_id")
            raise Forbidden("only a proxy admin or an admin of the team may change its members", "team_id")
        require(caller, Action.MEMBER_WRITE, MemberChange(team, None))  # not this team's admin: 403 before any lookup
        user = await self._teams.existing_user(member)
        user_team_ids = await self._team_ids_of(user.id) if user is not None else frozenset()
        require(caller, Action.MEMBER_WRITE, MemberChange(team, user, user_team_ids, role_after))

    async def require_user_change(
        self, caller: Principal, user_id: str | None, fields: Mapping[str, Any], *, deleting: bool = False
    ) -> None:
        """A user created (``user_id`` unknown or None), updated with ``fields``, or deleted."""
        before = await self._directory.get(EntityType.USER, user_id) if user_id else None
        if deleting:
            role_after = None
        elif "user_role" in fields:  # null stores no role, which is read as the default one
            role_after = str(fields["user_role"] or DEFAULT_USER_ROLE)
        else:
            role_after = user_role(before) if before is not None else DEFAULT_USER_ROLE
        require(caller, Action.USER_WRITE, UserChange(before, role_after))
