"""Teams and their members.

A member is recorded twice, on purpose: in the team's ``members_with_roles`` (LiteLLM's shape, what
authorization reads) and as its own ``team_member`` entity ``"team_id/user_id"`` (its role, its
``max_budget_in_team`` window and its spend, which every request of a team key with that user is charged to).
Membership edits write the team first (optimistically, retried on a concurrent change), then the member.

Deleting a team deletes its keys and members as LiteLLM does; its ledger records stay, so its spend history
survives in ``/spend/logs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledgergate.domain.charging import EntityType, team_member_id
from ledgergate.domain.entities import Entity
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.memberships import MEMBER_ROLES, members_of, role_in_team
from ledgergate.services.entities import DEFAULT_USER_ROLE, TEAM, TEAM_MEMBER, USER, EntityService
from ledgergate.services.errors import Conflict, NotFound
from ledgergate.services.keys import KeyService

_WRITE_ATTEMPTS = 5
__all__ = ["MEMBER_ROLES", "TeamService", "members_of", "role_in_team"]


class TeamService:
    def __init__(self, entities: EntityService, keys: KeyService) -> None:
        self._entities = entities
        self._keys = keys

    async def create(
        self, team_id: str | None, fields: Mapping[str, Any], members: Sequence[Mapping[str, Any]]
    ) -> Entity:
        entities = self._entities
        _check_members(members)
        team = entities.apply(TEAM, entities.new_entity(TEAM, team_id), fields)
        team = await entities.insert(TEAM, team.updated(extra={**team.extra, "members_with_roles": []}))
        if members:
            await self.add_members(team.id, members, None)
        return await entities.get(TEAM, team.id)

    async def _write_members(self, team_id: str, change: Any) -> Entity:
        """Apply ``change(members) -> members`` to the team's member list, retrying on a concurrent write."""
        for attempt in range(_WRITE_ATTEMPTS):
            team = await self._entities.get(TEAM, team_id)
            members = change(members_of(team))
            updated = team.updated(extra={**team.extra, "members_with_roles": members})
            try:
                return await self._entities.save(TEAM, updated, team)
            except Conflict:
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _user_for(self, member: Mapping[str, Any], *, create: bool) -> Entity:
        """The member's user by ``user_id`` or ``user_email``; created (as LiteLLM does) when ``create``."""
        user_id, email = member.get("user_id"), member.get("user_email")
        user: Entity | None = None
        if user_id:
            user = await self._entities.find(USER, user_id)
        elif email:
            matches = [u for u in await self._entities.list_all(EntityType.USER) if u.extra.get("user_email") == email]
            user = matches[0] if matches else None
        else:
            raise InvalidInput("member.user_id", "a member needs a user_id or a user_email")
        if user is not None:
            return user
        if not create:
            raise NotFound(f"user {user_id or email!r} not found", param="user_id" if user_id else "user_email")
        fields = {"user_email": email, "user_role": DEFAULT_USER_ROLE}
        return await self._entities.create(USER, user_id, fields)

    async def existing_user(self, member: Mapping[str, Any]) -> Entity | None:
        """The user a member entry names, if it exists (``None``: ``add_members`` would create it)."""
        try:
            return await self._user_for(member, create=False)
        except NotFound:
            return None

    async def add_members(
        self, team_id: str, members: Sequence[Mapping[str, Any]], max_budget_in_team: object
    ) -> dict[str, Any]:
        team = await self._entities.get(TEAM, team_id)
        _check_members(members)
        budget = {} if max_budget_in_team is None else {"max_budget": max_budget_in_team}
        # Validate the budget before anything is written.
        _member_fields(self._entities, Entity(EntityType.TEAM_MEMBER, "-"), budget)
        # Every member is checked before any user is created: a refused list writes nothing.
        found: list[Entity | None] = []
        for member in members:
            user = await self.existing_user(member)
            listed = {u.id for u in found if u is not None}
            if user is not None and (role_in_team(team, user.id) is not None or user.id in listed):
                raise Conflict(f"user {user.id!r} is already a member of team {team_id!r}", param="member")
            found.append(user)
        wanted: dict[str, tuple[Entity, str]] = {}
        for member, existing in zip(members, found, strict=True):
            user = existing or await self._user_for(member, create=True)
            wanted[user.id] = (user, str(member.get("role") or "user"))

        def add(current: list[dict[str, Any]]) -> list[dict[str, Any]]:
            present = {str(m.get("user_id")) for m in current}
            clash = present & set(wanted)
            if clash:
                raise Conflict(f"user {sorted(clash)[0]!r} is already a member of team {team_id!r}", param="member")
            added = [
                {"user_id": user.id, "user_email": user.extra.get("user_email"), "role": role}
                for user, role in wanted.values()
            ]
            return current + added

        team = await self._write_members(team_id, add)
        memberships = [await self._put_member(team_id, user.id, role, budget) for user, role in wanted.values()]
        return {
            **await self._entities.view(TEAM, team),
            "updated_users": [await self._entities.view(USER, user) for user, _ in wanted.values()],
            "updated_team_memberships": [await self.member_view(m) for m in memberships],
        }

    async def _put_member(self, team_id: str, user_id: str, role: str, budget: Mapping[str, Any]) -> Entity:
        member_id = team_member_id(team_id, user_id)
        current = await self._entities.find(TEAM_MEMBER, member_id)
        if current is None:
            entity = self._entities.new_entity(TEAM_MEMBER, member_id, team_id=team_id, user_id=user_id)
            entity = _member_fields(self._entities, entity, budget).updated(extra={"role": role})
            return await self._entities.insert(TEAM_MEMBER, entity)
        # A left-over member entity (the team write succeeded, this one did not): bring it up to date.
        entity = _member_fields(self._entities, current, budget).updated(extra={**current.extra, "role": role})
        return await self._entities.save(TEAM_MEMBER, entity, current)

    async def _member(self, team_id: str, selector: Mapping[str, Any]) -> tuple[Entity, Entity]:
        team = await self._entities.get(TEAM, team_id)
        user = await self._user_for(selector, create=False)
        if role_in_team(team, user.id) is None:
            raise NotFound(f"user {user.id!r} is not a member of team {team_id!r}", param="user_id")
        return team, user

    async def update_member(
        self, team_id: str, selector: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change a member's ``role`` and/or ``max_budget_in_team`` (+ ``budget_duration``)."""
        team, user = await self._member(team_id, selector)
        role = fields.get("role") or role_in_team(team, user.id) or "user"
        budget = {
            target: fields[source]
            for source, target in (("max_budget_in_team", "max_budget"), ("budget_duration", "budget_duration"))
            if source in fields
        }
        member_id = team_member_id(team_id, user.id)
        current = await self._entities.find(TEAM_MEMBER, member_id)
        _member_fields(self._entities, current or Entity(EntityType.TEAM_MEMBER, member_id), budget)
        if role != role_in_team(team, user.id):

            def set_role(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [{**m, "role": role} if m.get("user_id") == user.id else m for m in members]

            await self._write_members(team_id, set_role)
        member = await self._put_member(team_id, user.id, role, budget)
        return await self.member_view(member)

    async def remove_member(self, team_id: str, selector: Mapping[str, Any]) -> dict[str, Any]:
        _, user = await self._member(team_id, selector)

        def remove(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [m for m in members if m.get("user_id") != user.id]

        team = await self._write_members(team_id, remove)
        await self._entities.directory.delete(EntityType.TEAM_MEMBER, team_member_id(team_id, user.id))
        return await self._entities.view(TEAM, team)

    async def remove_user_everywhere(self, user_id: str) -> None:
        for member in await self._entities.list_all(EntityType.TEAM_MEMBER, user_id=user_id):
            if member.team_id and await self._entities.find(TEAM, member.team_id) is not None:
                await self.remove_member(member.team_id, {"user_id": user_id})
            else:
                await self._entities.directory.delete(EntityType.TEAM_MEMBER, member.id)

    async def delete(self, team_ids: Sequence[str]) -> dict[str, Any]:
        for team_id in team_ids:  # all or nothing: every id must exist before anything is deleted
            await self._entities.get(TEAM, team_id)
        deleted_keys: list[str] = []
        for team_id in team_ids:
            for key in await self._entities.list_all(EntityType.KEY, team_id=team_id):
                await self._entities.directory.delete(EntityType.KEY, key.id)
                deleted_keys.append(key.id)
            for member in await self._entities.list_all(EntityType.TEAM_MEMBER, team_id=team_id):
                await self._entities.directory.delete(EntityType.TEAM_MEMBER, member.id)
            await self._entities.directory.delete(EntityType.TEAM, team_id)
        return {"deleted_teams": list(team_ids), "deleted_keys": deleted_keys}

    async def teams_of(self, user_id: str) -> list[Entity]:
        teams = []
        for member in await self._entities.list_all(EntityType.TEAM_MEMBER, user_id=user_id):
            team = await self._entities.find(TEAM, member.team_id) if member.team_id else None
            if team is not None:
                teams.append(team)
        return teams

    async def member_view(self, member: Entity) -> dict[str, Any]:
        view = await self._entities.view(TEAM_MEMBER, member)
        view["max_budget_in_team"] = view["max_budget"]
        return view

    async def info(self, team: Entity) -> dict[str, Any]:
        """LiteLLM's ``/team/info`` shape: the team, its keys and its members' own budgets and spend."""
        keys = await self._entities.list_all(EntityType.KEY, team_id=team.id)
        members = await self._entities.list_all(EntityType.TEAM_MEMBER, team_id=team.id)
        return {
            "team_id": team.id,
            "team_info": await self._entities.view(TEAM, team),
            "keys": [await self._keys.view(key) for key in keys],
            "team_memberships": [await self.member_view(m) for m in members],
        }


def _member_fields(entities: EntityService, member: Entity, budget: Mapping[str, Any]) -> Entity:
    """Apply a member's budget, naming ``max_budget_in_team`` in errors (the field the client sent)."""
    try:
        return entities.apply(TEAM_MEMBER, member, budget)
    except InvalidInput as exc:
        field = exc.field.replace("max_budget", "max_budget_in_team", 1) if exc.field == "max_budget" else exc.field
        raise InvalidInput(field, exc.message) from exc


def _check_members(members: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a bad member list before anything is written."""
    seen: set[str] = set()
    for index, member in enumerate(members):
        if member.get("role", "user") not in MEMBER_ROLES:
            raise InvalidInput(f"member[{index}].role", f"must be one of {list(MEMBER_ROLES)}")
        name = member.get("user_id") or member.get("user_email")
        if not name:
            raise InvalidInput(f"member[{index}].user_id", "a member needs a user_id or a user_email")
        if name in seen:
            raise InvalidInput(f"member[{index}]", f"{name!r} is listed twice")
        seen.add(str(name))
