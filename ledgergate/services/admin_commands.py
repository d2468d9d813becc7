"""Admin writes as use cases: authorise the caller (``AdminGuard`` -> ``authorize``), then change the entity and
return its view. The admin API's routes and the dashboard's forms both call these with validated bodies
(``services/admin_schemas.py``, ``services/admin_entity_schemas.py``), so a write is checked the same way
whichever edge it comes from."""

from __future__ import annotations

from typing import Any

from ledgergate.domain.charging import EntityType
from ledgergate.domain.principals import Principal
from ledgergate.services.admin_entity_schemas import TagIn, TeamNewIn, TeamUpdateIn, UserNewIn, UserUpdateIn
from ledgergate.services.admin_guard import AdminGuard, require
from ledgergate.services.admin_schemas import KeyGenerateIn, KeyUpdateIn, ResetSpendIn, provided
from ledgergate.services.authorization import Action, bind_to_issuer, blocked_by
from ledgergate.services.entities import CUSTOMER, ORGANIZATION, TAG, TEAM, USER, Kind
from ledgergate.services.entity_admin import EntityAdmin
from ledgergate.services.errors import NotFound
from ledgergate.services.keys import KeyService
from ledgergate.services.spend_reset import SpendResets

# Spend resets a proxy admin alone may make: the entity's kind, and the response field naming it.
_ADMIN_ONLY_RESETS: dict[EntityType, tuple[Kind, str]] = {
    EntityType.USER: (USER, "user_id"),
    EntityType.ORGANIZATION: (ORGANIZATION, "organization_id"),
    EntityType.CUSTOMER: (CUSTOMER, "user_id"),  # LiteLLM's name for a customer's id
    EntityType.TAG: (TAG, "name"),
}


class AdminCommands:
    def __init__(self, admin: EntityAdmin, keys: KeyService, resets: SpendResets, guard: AdminGuard) -> None:
        self._admin = admin
        self._keys = keys
        self._resets = resets
        self.guard = guard

    async def generate_key(self, caller: Principal, body: KeyGenerateIn) -> dict[str, Any]:
        """A proxy admin, or a team admin for a key of their team."""
        fields = bind_to_issuer(caller, provided(body), creating=True)
        blocker = blocked_by(caller)
        after = self._keys.preview_new(fields, blocker)
        ceiling = await self.guard.require_key_change(caller, Action.KEY_WRITE, None, after)
        result: dict[str, Any] = await self._keys.generate(fields, blocker, ceiling)
        return result

    async def update_key(self, caller: Principal, body: KeyUpdateIn) -> dict[str, Any]:
        """A proxy admin, or a team admin for a key of their team that stays in their team."""
        current = await self._keys.get(body.key)
        fields = bind_to_issuer(caller, provided(body, exclude={"key"}), creating=False)
        blocker = blocked_by(caller)
        after = self._keys.preview_update(current, fields, blocker)
        ceiling = await self.guard.require_key_change(caller, Action.KEY_WRITE, current, after)
        result: dict[str, Any] = await self._keys.update(body.key, fields, blocker, expected=current, ceiling=ceiling)
        return result

    async def set_key_blocked(self, caller: Principal, key: str, blocked: bool) -> dict[str, Any]:
        """Block: a proxy admin or a team admin of the key's team; unblock: a team admin only what a team admin
        blocked."""
        current = await self._keys.get(key)
        blocker = blocked_by(caller)
        after = self._keys.preview_update(current, {"blocked": blocked}, blocker)
        await self.guard.require_key_change(caller, Action.KEY_WRITE, current, after)
        result: dict[str, Any] = await self._keys.set_blocked(key, blocked, blocker, expected=current)
        return result

    async def create_team(self, caller: Principal, body: TeamNewIn) -> dict[str, Any]:
        require(caller, Action.ADMIN_WRITE)
        members = [m.model_dump() for m in body.members_with_roles or []]
        fields = provided(body, exclude={"team_id", "members_with_roles"})
        team = await self._admin.teams.create(body.team_id, fields, members)
        return await self._admin.entities.view(TEAM, team)

    async def update_team(self, caller: Principal, body: TeamUpdateIn) -> dict[str, Any]:
        require(caller, Action.ADMIN_WRITE)
        return await self._update(TEAM, body.team_id, provided(body, exclude={"team_id"}))

    async def set_team_blocked(self, caller: Principal, team_id: str, blocked: bool) -> dict[str, Any]:
        """A blocked team's keys are refused (403) until it is unblocked."""
        require(caller, Action.ADMIN_WRITE)
        return await self._update(TEAM, team_id, {"blocked": blocked})

    async def create_user(self, caller: Principal, body: UserNewIn) -> dict[str, Any]:
        """A proxy admin, granting only roles below its own; issues a personal key unless ``auto_create_key`` is
        false (LiteLLM)."""
        fields = provided(body, exclude={"user_id", "teams", "auto_create_key", "key_alias"})
        await self.guard.require_user_change(caller, body.user_id, fields)
        return await self._admin.users.create(
            body.user_id, fields, body.teams or [], auto_create_key=body.auto_create_key, key_alias=body.key_alias
        )

    async def update_user(self, caller: Principal, body: UserUpdateIn) -> dict[str, Any]:
        """A role changes only when the caller is stronger than both the old and the new role."""
        fields = provided(body, exclude={"user_id"})
        await self.guard.require_user_change(caller, body.user_id, fields)
        user = await self._admin.entities.update(USER, body.user_id, fields)
        return await self._admin.users.view(user)

    async def create_tag(self, caller: Principal, body: TagIn) -> dict[str, Any]:
        require(caller, Action.ADMIN_WRITE)
        tag = await self._admin.entities.create(TAG, body.name, provided(body, exclude={"name"}))
        return await self._admin.entities.view(TAG, tag)

    async def update_tag(self, caller: Principal, body: TagIn) -> dict[str, Any]:
        require(caller, Action.ADMIN_WRITE)
        return await self._update(TAG, body.name, provided(body, exclude={"name"}))

    async def _update(self, kind: Kind, entity_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        entity = await self._admin.entities.update(kind, entity_id, fields)
        return await self._admin.entities.view(kind, entity)

    async def reset_spend(
        self, caller: Principal, entity_type: EntityType, entity_id: str, body: ResetSpendIn
    ) -> dict[str, Any]:
        """Set one window's spend to ``reset_to``; the adjustment record names the caller as actor. A key's or a
        team's: as ``authorize`` decides; every other kind's: a proxy admin only (a team admin resetting their
        own team's spend would make its budget meaningless)."""
        reason = body.reason or ""
        if entity_type is EntityType.KEY:
            key = await self._keys.get(entity_id)
            await self.guard.require_key_reset(caller, key)
            result = await self._resets.reset(
                key, body.reset_to, body.budget_duration, caller.actor, reason, model=body.model
            )
            return {**result, "key": entity_id}
        if entity_type is EntityType.TEAM:
            team = await self._admin.entities.get(TEAM, entity_id)
            await self.guard.require_team(caller, Action.TEAM_RESET_SPEND, team.id)
            result = await self._resets.reset(
                team, body.reset_to, body.budget_duration, caller.actor, reason, model=body.model
            )
            return {**result, "team_id": entity_id}
        admin_only = _ADMIN_ONLY_RESETS.get(entity_type)
        if admin_only is None:
            raise NotFound(f"a {entity_type.value} has no spend to reset here")
        kind, id_field = admin_only
        require(caller, Action.ADMIN_WRITE)
        entity = await self._admin.entities.get(kind, entity_id)
        result = await self._resets.reset(entity, body.reset_to, body.budget_duration, caller.actor, reason)
        return {**result, id_field: entity_id}
