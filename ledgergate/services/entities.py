"""Users, teams, organizations, customers, tags, team members and shared budgets: one create/update/view/delete.

Each entity type is described by a ``Kind`` (its id field, alias field, the fields it accepts); everything else
(budget fields, references, optimistic writes, views with per-window spend) is shared. Team membership lives
in ``services/teams.py``, user creation and deletion in ``services/users.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.errors import EntityConflict, InvalidInput
from ledgergate.domain.ports import Clock
from ledgergate.services.budget_fields import apply_budget_fields
from ledgergate.services.directory import Directory
from ledgergate.services.errors import Conflict, NotFound
from ledgergate.services.views import EntityViews

USER_ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
DEFAULT_USER_ROLE = "internal_user"
_PAGE = 500
_BUDGET_FIELD_NAMES = (
    "spend",
    "lifetime_spend",
    "max_budget",
    "budget_duration",
    "budget_reset_at",
    "soft_budget",
    "budget_limits",
    "budget_id",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "rate_limit_usage",
)


class EntityLister(Protocol):
    async def list(
        self,
        entity_type: EntityType,
        *,
        user_id: str | None = None,
        team_id: str | None = None,
        organization_id: str | None = None,
        budget_id: str | None = None,
        alias: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[Entity]: ...


@dataclass(frozen=True, slots=True)
class Kind:
    """How one entity type looks on the API: LiteLLM's field names and which generic fields it accepts."""

    type: EntityType
    label: str  # used in messages: "team 'x' not found"
    id_field: str
    alias_field: str | None = None
    extra_fields: tuple[str, ...] = ()  # stored in Entity.extra
    plain_fields: tuple[str, ...] = ()  # of: models, metadata, tags, blocked, organization_id, team_id, user_id


USER = Kind(EntityType.USER, "user", "user_id", "user_alias", ("user_email", "user_role"), ("models", "metadata"))
TEAM = Kind(
    EntityType.TEAM,
    "team",
    "team_id",
    "team_alias",
    ("members_with_roles",),
    ("models", "metadata", "tags", "blocked", "organization_id"),
)
TEAM_MEMBER = Kind(EntityType.TEAM_MEMBER, "team member", "member_id", None, ("role",), ("team_id", "user_id"))
ORGANIZATION = Kind(
    EntityType.ORGANIZATION, "organization", "organization_id", "organization_alias", (), ("models", "metadata")
)
CUSTOMER = Kind(EntityType.CUSTOMER, "customer", "user_id", "alias", (), ("blocked", "metadata"))
TAG = Kind(EntityType.TAG, "tag", "name", None, ("description",), ("models", "metadata"))
BUDGET = Kind(EntityType.BUDGET, "budget", "budget_id")

_BUDGETED_TYPES = (
    EntityType.KEY,
    EntityType.USER,
    EntityType.TEAM,
    EntityType.TEAM_MEMBER,
    EntityType.ORGANIZATION,
    EntityType.CUSTOMER,
    EntityType.TAG,
)


def _str_list(value: object, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(field, "must be a list of strings")
    return tuple(dict.fromkeys(value))


def _optional_str(value: object, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    return value or None


class EntityService:
    def __init__(self, directory: Directory, store: EntityLister, views: EntityViews, clock: Clock) -> None:
        self.directory = directory
        self._store = store
        self._views = views
        self._clock = clock

    async def find(self, kind: Kind, entity_id: str) -> Entity | None:
        return await self.directory.get(kind.type, entity_id)

    async def get(self, kind: Kind, entity_id: str) -> Entity:
        entity = await self.directory.get(kind.type, entity_id)
        if entity is None:
            raise NotFound(f"{kind.label} {entity_id!r} not found", param=kind.id_field)
        return entity

    def apply(self, kind: Kind, entity: Entity, fields: Mapping[str, Any]) -> Entity:
        """``entity`` with every field present in ``fields`` applied; absent fields are left unchanged."""
        changes: dict[str, Any] = {}
        if kind.alias_field is not None and kind.alias_field in fields:
            changes["alias"] = _optional_str(fields[kind.alias_field], kind.alias_field)
        for name in kind.plain_fields:
            if name not in fields:
                continue
            value = fields[name]
            if name in ("models", "tags"):
                changes[name] = _str_list(value, name)
            elif name == "metadata":
                if value is not None and not isinstance(value, dict):
                    raise InvalidInput(name, "must be an object")
                changes[name] = value or {}
            elif name == "blocked":
                changes[name] = bool(value)
            else:
                changes[name] = _optional_str(value, name)
        if kind is not BUDGET and "budget_id" in fields:
            changes["budget_id"] = _optional_str(fields["budget_id"], "budget_id")
        extra = dict(entity.extra)
        for name in kind.extra_fields:
            if name in fields:
                extra[name] = fields[name]
        if "user_role" in extra and extra["user_role"] not in USER_ROLES:
            raise InvalidInput("user_role", f"must be one of {list(USER_ROLES)}")
        changes["extra"] = extra
        return apply_budget_fields(entity.updated(**changes), fields)

    async def check_references(self, entity: Entity) -> None:
        """Every id an entity points at must exist (404 naming the field)."""
        references = (
            (EntityType.ORGANIZATION, entity.organization_id, "organization", "organization_id"),
            (EntityType.BUDGET, entity.budget_id, "budget", "budget_id"),
        )
        for entity_type, ref_id, label, field in references:
            if entity.type is entity_type:
                continue
            if ref_id and await self.directory.get(entity_type, ref_id) is None:
                raise NotFound(f"{label} {ref_id!r} not found", param=field)

    def new_entity(self, kind: Kind, entity_id: str | None, **fields: Any) -> Entity:
        now_s = self._clock.now_s()
        return Entity(kind.type, entity_id or uuid.uuid4().hex, created_at_s=now_s, updated_at_s=now_s, **fields)

    async def create(self, kind: Kind, entity_id: str | None, fields: Mapping[str, Any]) -> Entity:
        entity = self.apply(kind, self.new_entity(kind, entity_id), fields)
        return await self.insert(kind, entity)

    async def insert(self, kind: Kind, entity: Entity) -> Entity:
        await self.check_references(entity)
        try:
            return await self.directory.create(entity)
        except EntityConflict as exc:
            raise Conflict(f"{kind.label} {entity.id!r} already exists", param=kind.id_field) from exc

    async def update(self, kind: Kind, entity_id: str, fields: Mapping[str, Any]) -> Entity:
        current = await self.get(kind, entity_id)
        entity = self.apply(kind, current, fields)
        await self.check_references(entity)
        return await self.save(kind, entity, current)

    async def save(self, kind: Kind, entity: Entity, current: Entity) -> Entity:
        """Write ``entity`` over ``current`` unless someone else changed it since it was read (then 409)."""
        entity = entity.updated(updated_at_s=self._clock.now_s(), version=current.version + 1)
        try:
            return await self.directory.save(entity)
        except EntityConflict as exc:
            # Another instance changed it: drop our cached copy so that a retry reads the new one.
            self.directory.invalidate(entity.ref)
            raise Conflict(f"{kind.label} {entity.id!r} changed concurrently; retry") from exc

    async def delete(self, kind: Kind, entity_ids: Sequence[str]) -> list[str]:
        for entity_id in entity_ids:  # all or nothing: every id must exist before anything is deleted
            await self.get(kind, entity_id)
        for entity_id in entity_ids:
            await self.directory.delete(kind.type, entity_id)
        return list(entity_ids)

    async def list_all(
        self,
        entity_type: EntityType,
        *,
        user_id: str | None = None,
        team_id: str | None = None,
        organization_id: str | None = None,
        budget_id: str | None = None,
    ) -> list[Entity]:
        found: list[Entity] = []
        while True:
            page = await self._store.list(
                entity_type,
                user_id=user_id,
                team_id=team_id,
                organization_id=organization_id,
                budget_id=budget_id,
                offset=len(found),
                limit=_PAGE,
            )
            found.extend(page)
            if len(page) < _PAGE:
                return found

    async def referrers(self, kind: Kind, entity_id: str) -> list[str]:
        """``"type:id"`` of every entity that points at this organization or budget."""
        if kind is ORGANIZATION:
            lookups = [await self.list_all(t, organization_id=entity_id) for t in (EntityType.TEAM, EntityType.KEY)]
        elif kind is BUDGET:
            lookups = [await self.list_all(t, budget_id=entity_id) for t in _BUDGETED_TYPES]
        else:
            raise ValueError(f"{kind.label} cannot be referenced")
        return [f"{entity.type.value}:{entity.id}" for found in lookups for entity in found]

    async def delete_unreferenced(self, kind: Kind, entity_ids: Sequence[str]) -> list[str]:
        """Delete organizations or budgets; refuse (400, naming them) while others still point at one.

        Deleting it would silently drop the limits of everything that references it.
        """
        for entity_id in entity_ids:  # all or nothing: check every id before deleting any
            await self.get(kind, entity_id)
            users = await self.referrers(kind, entity_id)
            if users:
                shown = ", ".join(users[:20]) + (" ..." if len(users) > 20 else "")
                raise InvalidInput(
                    kind.id_field,
                    f"{kind.label} {entity_id!r} is still used by {len(users)} entities ({shown}); "
                    f"point them elsewhere or delete them first",
                )
        for entity_id in entity_ids:
            await self.directory.delete(kind.type, entity_id)
        return list(entity_ids)

    async def view(self, kind: Kind, entity: Entity) -> dict[str, Any]:
        """LiteLLM's shape of the entity, with every window's current ``spend`` and ``reset_at``."""
        generic = await self._views.view(entity)
        view: dict[str, Any] = {kind.id_field: entity.id}
        if kind.alias_field is not None:
            view[kind.alias_field] = entity.alias
        for name in kind.plain_fields:
            view[name] = generic[name]
        for name in kind.extra_fields:
            view[name] = entity.extra.get(name)
        for name in _BUDGET_FIELD_NAMES:
            if name != kind.id_field:  # a budget object's own id is its budget_id
                view[name] = generic[name]
        if kind is TEAM:  # besides keys, the one entity that takes model_max_budget
            view["model_max_budget"] = generic["model_max_budget"]
        view["created_at"] = generic["created_at"]
        view["updated_at"] = generic["updated_at"]
        return view
