"""Internal users: creation (with a personal key, as LiteLLM's ``/user/new`` does), info, deletion.

Deleting a user deletes their keys and memberships as LiteLLM does; their ledger records stay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.services.entities import DEFAULT_USER_ROLE, TEAM, USER, EntityService
from ledgergate.services.keys import KeyService
from ledgergate.services.teams import TeamService


class UserService:
    def __init__(self, entities: EntityService, teams: TeamService, keys: KeyService) -> None:
        self._entities = entities
        self._teams = teams
        self._keys = keys

    async def create(
        self,
        user_id: str | None,
        fields: Mapping[str, Any],
        teams: Sequence[str] = (),
        *,
        auto_create_key: bool = True,
        key_alias: str | None = None,
    ) -> dict[str, Any]:
        for team_id in teams:  # refuse before writing anything
            await self._entities.get(TEAM, team_id)
        user = await self._entities.create(
            USER, user_id, {**fields, "user_role": fields.get("user_role") or DEFAULT_USER_ROLE}
        )
        for team_id in dict.fromkeys(teams):
            await self._teams.add_members(team_id, [{"user_id": user.id, "role": "user"}], None)
        view = await self.view(user)
        if auto_create_key:
            key = await self._keys.generate({"user_id": user.id, "key_alias": key_alias})
            view.update(key=key["key"], token=key["token"], key_name=key.get("key_name"))
        return view

    async def view(self, user: Entity) -> dict[str, Any]:
        view = await self._entities.view(USER, user)
        view["teams"] = [team.id for team in await self._teams.teams_of(user.id)]
        return view

    async def info(self, user_id: str, team_scope: str | None = None) -> dict[str, Any]:
        """LiteLLM's ``/user/info`` shape: the user, their keys (no secrets) and their teams. ``team_scope``:
        only what concerns that team (a key a team admin issued reads no personal keys or metadata)."""
        user = await self._entities.get(USER, user_id)
        keys = await self._entities.list_all(EntityType.KEY, user_id=user_id)
        teams = await self._teams.teams_of(user_id)
        user_view = await self.view(user)
        if team_scope is not None:
            keys = [key for key in keys if key.team_id == team_scope]
            teams = [team for team in teams if team.id == team_scope]
            user_view.pop("metadata", None)
        return {
            "user_id": user_id,
            "user_info": user_view,
            "keys": [await self._keys.view(key) for key in keys],
            "teams": [await self._entities.view(TEAM, team) for team in teams],
        }

    async def delete(self, user_ids: Sequence[str]) -> dict[str, Any]:
        for user_id in user_ids:  # all or nothing: every id must exist before anything is deleted
            await self._entities.get(USER, user_id)
        deleted_keys: list[str] = []
        for user_id in user_ids:
            for key in await self._entities.list_all(EntityType.KEY, user_id=user_id):
                await self._entities.directory.delete(EntityType.KEY, key.id)
                deleted_keys.append(key.id)
            await self._teams.remove_user_everywhere(user_id)
            await self._entities.directory.delete(EntityType.USER, user_id)
        return {"deleted_users": list(user_ids), "deleted_keys": deleted_keys}
