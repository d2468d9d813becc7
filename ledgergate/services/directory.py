"""Cached entity lookups for the hot path: a cache hit costs no database round trip.

Every write goes through ``Directory``, which updates the cache after the database commit. With several
instances, a ``CacheCoherence`` (``storage/redis_invalidation.py``) tells the others: a write returns only once
every other instance has dropped the entity or stopped using its cache (docs/decisions/0004).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.ports import CacheCoherence, EntityStore
from ledgergate.domain.windows import Window

_MAX_CACHED = 200_000


class Directory:
    def __init__(
        self, store: EntityStore, *, max_age_s: float | None = None, coherence: CacheCoherence | None = None
    ) -> None:
        """``max_age_s``: cached entries older than this are read again (a safety net for changes whose
        announcement was lost, e.g. a writer killed between its commit and its announcement). ``coherence``:
        with several instances, what keeps their caches coherent."""
        self.store = store
        self._max_age_s = max_age_s
        self._cache: dict[EntityRef, tuple[Entity | None, float]] = {}
        # Bumped by every change and invalidation: a read that overlapped one must not cache what it read.
        self._generation = 0
        self.coherence = coherence
        self.on_change: list[Callable[[EntityRef], None]] = []

    def _cache_usable(self) -> bool:
        return self.coherence is None or self.coherence.cache_usable()

    async def get(self, entity_type: EntityType, entity_id: str) -> Entity | None:
        ref = EntityRef(entity_type, entity_id)
        usable = self._cache_usable()
        if usable:
            cached = self._cache.get(ref)
            if cached is not None and (self._max_age_s is None or time.monotonic() - cached[1] < self._max_age_s):
                return cached[0]
        generation = self._generation
        entity = await self.store.get(entity_type, entity_id)
        if usable and generation == self._generation and self._cache_usable():
            self._remember(ref, entity)
        return entity

    async def create(self, entity: Entity) -> Entity:
        generation = self._generation
        await self.store.insert(entity)
        await self._stored(entity.ref, entity, generation)
        return entity

    async def save(self, entity: Entity) -> Entity:
        """Replace the stored entity (optimistic: it must not have changed since ``entity.version - 1``)."""
        generation = self._generation
        await self.store.replace(entity, expected_version=entity.version - 1)
        await self._stored(entity.ref, entity, generation)
        return entity

    async def delete(self, entity_type: EntityType, entity_id: str) -> bool:
        ref = EntityRef(entity_type, entity_id)
        generation = self._generation
        deleted = await self.store.delete(entity_type, entity_id)
        await self._stored(ref, None, generation)
        return deleted

    def invalidate(self, ref: EntityRef) -> None:
        self._generation += 1
        self._cache.pop(ref, None)

    def clear(self) -> None:
        """Forget every cached entity (this instance may have missed changes)."""
        self._generation += 1
        self._cache.clear()

    def _remember(self, ref: EntityRef, entity: Entity | None) -> None:
        if len(self._cache) >= _MAX_CACHED:
            self._cache.pop(next(iter(self._cache)))
        self._cache[ref] = (entity, time.monotonic())

    async def _stored(self, ref: EntityRef, entity: Entity | None, generation: int) -> None:
        # An invalidation that arrived while the write was in flight may be a later write of another instance:
        # then what we wrote is not necessarily current, so it is not cached.
        overlapped = generation != self._generation
        self._generation += 1
        if overlapped or not self._cache_usable():
            self._cache.pop(ref, None)
        else:
            self._remember(ref, entity)
        for listener in self.on_change:
            listener(ref)
        if self.coherence is not None:
            await self.coherence.announce(ref)

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
