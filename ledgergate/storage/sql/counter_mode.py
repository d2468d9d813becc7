"""Which store admits requests, agreed by every instance through one SQL row (``counter_fallback: database``).

The row holds the store (``redis`` or ``database``), an epoch bumped by every switch, and the instant of the
switch. A switch is a compare-and-set on the epoch, so instances racing to switch agree on one winner. Each
instance also keeps a heartbeat row saying whether it can reach Redis: admission returns to Redis only when every
live instance can (one instance cut off from Redis must not be left on counters nobody else updates).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.ports import CounterStoreUnavailable
from ledgergate.storage.sql.counter_rows import invalidation_statements
from ledgergate.storage.sql.tables import counter_store_members, counter_store_mode

_MODE_ROW_ID = 1
_FORGET_MEMBER_AFTER_S = 3600.0  # a member row not renewed for this long (a killed instance) is deleted


class CounterStore(StrEnum):
    REDIS = "redis"
    DATABASE = "database"


@dataclass(frozen=True, slots=True)
class ModeState:
    store: CounterStore
    epoch: int
    changed_at_s: float  # the switching instance's clock


class SqlCounterMode:
    """The shared mode row and the instances' heartbeats."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        insert: Any = sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert
        self._insert = insert

    async def poll(self, instance_id: str, redis_ok: bool, now_s: float, member_ttl_s: float) -> tuple[ModeState, int]:
        """Renew this instance's heartbeat; return the mode and how many live instances cannot reach Redis."""
        m = counter_store_members.c
        beat = self._insert(counter_store_members).values(instance_id=instance_id, redis_ok=redis_ok, seen_at_s=now_s)
        beat = beat.on_conflict_do_update(
            index_elements=[m.instance_id], set_={"redis_ok": redis_ok, "seen_at_s": now_s}
        )
        unreachable = select(func.count()).where(m.redis_ok.is_(False), m.seen_at_s > now_s - member_ttl_s)
        try:
            async with self._engine.begin() as connection:
                await connection.execute(beat)
                await connection.execute(
                    delete(counter_store_members).where(m.seen_at_s < now_s - _FORGET_MEMBER_AFTER_S)
                )
                count = (await connection.execute(unreachable)).scalar()
                state = await self._read(connection)
        except (DBAPIError, OSError, TimeoutError) as exc:
            raise CounterStoreUnavailable(f"counter store mode unreadable: {exc!r}") from exc
        return state, int(count or 0)

    async def read(self) -> ModeState:
        try:
            async with self._engine.connect() as connection:
                return await self._read(connection)
        except (DBAPIError, OSError, TimeoutError) as exc:
            raise CounterStoreUnavailable(f"counter store mode unreadable: {exc!r}") from exc

    @staticmethod
    async def _read(connection: Any) -> ModeState:
        c = counter_store_mode.c
        row = (await connection.execute(select(c.mode, c.epoch, c.changed_at_s).where(c.id == _MODE_ROW_ID))).one()
        return ModeState(CounterStore(row[0]), int(row[1]), float(row[2]))

    async def switch(self, expected_epoch: int, store: CounterStore, now_s: float) -> ModeState:
        """Switch to ``store`` unless someone switched since ``expected_epoch``; the state after, either way.

        Moving to SQL invalidates the SQL counters in the same transaction: they were last exact when admission
        last ran through them, and everything charged through Redis since is only in the ledger.
        """
        c = counter_store_mode.c
        try:
            async with self._engine.begin() as connection:
                switched = await connection.execute(
                    update(counter_store_mode)
                    .where(c.id == _MODE_ROW_ID, c.epoch == expected_epoch)
                    .values(mode=store.value, epoch=expected_epoch + 1, changed_at_s=now_s)
                )
                if switched.rowcount == 1 and store is CounterStore.DATABASE:
                    for statement in invalidation_statements():
                        await connection.execute(statement)
                return await self._read(connection)
        except (DBAPIError, OSError, TimeoutError) as exc:
            raise CounterStoreUnavailable(f"cannot switch the counter store to {store.value}: {exc!r}") from exc

    async def leave(self, instance_id: str) -> None:
        """A stopping instance stops counting as a member (nobody waits for it to reach Redis)."""
        try:
            async with self._engine.begin() as connection:
                m = counter_store_members.c
                await connection.execute(delete(counter_store_members).where(m.instance_id == instance_id))
        except (DBAPIError, OSError, TimeoutError):
            pass  # its heartbeat ages out instead
