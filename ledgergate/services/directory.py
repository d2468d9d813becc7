"""Cached entity lookups for the hot path: a cache hit costs no database round trip.

Every write goes through ``Directory``, which updates the cache after the database commit. ``invalidate`` is
the hook for caches shared by several instances (they drop an entity another instance changed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.windows import Window

_MAX_CACHED = 200_000


class EntityStore(Protocol):
    async def get(self, entity_type: EntityType, entity_id: str) -> Entity | None: ...
    async def insert(self, entity: Entity) -> None: ...
    async def replace(self, entity: Entity, expected_version: int) -> None: ...
    async def delete(self, entity_type: EntityType, entity_id: str) -> bool: ...


class Directory:
    def __init__(self, store: EntityStore) -> None:
        self.store = store
        self._cache: dict[EntityRef, Entity | None] = {}
        self.on_change: list[Callable[[EntityRef], None]] = []

    async def get(self, entity_type: EntityType, entity_id: str) -> Entity | None:
        ref = EntityRef(entity_type, entity_id)
        try:
            return self._cache[ref]
        except KeyError:
            pass
        entity = await self.store.get(entity_type, entity_id)
        if len(self._cache) >= _MAX_CACHED:
            self._cache.pop(next(iter(self._cache)))
        self._cache[ref] = entity
        return entity

    async def create(self, entity: Entity) -> Entity:
        await self.store.insert(entity)
        self._stored(entity.ref, entity)
        return entity

    async def save(self, entity: Entity) -> Entity:
        """Replace the stored entity (optimistic: it must not have changed since ``entity.version - 1``)."""
        await self.store.replace(entity, expected_version=entity.version - 1)
        self._stored(entity.ref, entity)
        return entity

    async def delete(self, entity_type: EntityType, entity_id: str) -> bool:
        ref = EntityRef(entity_type, entity_id)
        deleted = await self.store.delete(entity_type, entity_id)
        self._stored(ref, None)
        return deleted

    def invalidate(self, ref: EntityRef) -> None:
        self._cache.pop(ref, None)

    def _stored(self, ref: EntityRef, entity: Entity | None) -> None:
        self._cache[ref] = entity
        for listener in self.on_change:
            listener(ref)

    async def effective_budget(self, entity: Entity) -> tuple[Window | None, tuple[Window, ...]]:
        """``(primary, further windows)``: the entity's own plus its shared budget object's.

        Own windows win over the budget object's on the same period.
        """
        if entity.budget_id is None:
            return entity.primary_window, entity.budget_limits
        budget = await self.get(EntityType.BUDGET, entity.budget_id)
        if budget is None:
            return entity.primary_window, entity.budget_limits
        own_keys = {window.key for window in entity.windows}
        inherited = tuple(w for w in budget.windows if w.key not in own_keys)
        if entity.primary_window is not None or not inherited:
            return entity.primary_window, entity.budget_limits + inherited
        return inherited[0], entity.budget_limits + inherited[1:]

    async def effective_windows(self, entity: Entity) -> tuple[Window, ...]:
        if entity.budget_id is None:
            return entity.windows
        primary, limits = await self.effective_budget(entity)
        return (primary, *limits) if primary is not None else limits
