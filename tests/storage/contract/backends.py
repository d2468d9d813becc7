"""The ``Counters`` implementations behind one test interface, plus the test clock and ledger view."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.admission import CounterKey, CounterLine
from ledgergate.domain.ports import Counters
from ledgergate.storage.memory_counters import MemoryCounters
from ledgergate.storage.redis_counters import RedisCounters
from ledgergate.storage.sql.sql_counters import SqlCounters
from ledgergate.storage.sql.tables import counter_holds, counters
from tests.builders import ManualClock
from tests.storage.contract.services import delete_prefixed, redis_client

__all__ = ["ManualClock"]  # the contract suites' clock (tests/builders.py), re-exported for them

T0_S = 1_767_225_600  # 2026-01-01T00:00:00Z: every test's clock starts here
PERIOD_END_S = T0_S + 3600


def line(entity_id: str, limit_nanos: int | None, *, window: str = "1h", entity_type: str = "key") -> CounterLine:
    """A line in the hour starting at T0 (``window="lifetime"`` for a lifetime window)."""
    if window == "lifetime":
        return CounterLine(CounterKey(entity_type, entity_id, "lifetime", 0), limit_nanos, 253_402_300_799)
    return CounterLine(CounterKey(entity_type, entity_id, window, T0_S), limit_nanos, PERIOD_END_S)


class LedgerView:
    """A ``CounterLoader`` over spend per counter that the test writes, as the charger writes the ledger: before
    it settles. (Suites that rebuild from the real ledger use ``SqlLedger.window_sums`` instead.)

    The snapshot is taken when the load starts and returned after ``delay_s``, as a slow SQL query would.
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.spent: defaultdict[CounterKey, int] = defaultdict(int)
        self.delay_s = delay_s
        self.loads = 0

    async def __call__(self, keys: Sequence[CounterKey], period_ends_s: Sequence[int]) -> list[int]:
        self.loads += 1
        snapshot = [self.spent[key] for key in keys]
        await asyncio.sleep(self.delay_s)
        return snapshot


class MemoryBackend:
    """One process: every "instance" is the same in-process counters; losing the cache is a restart."""

    name = "memory"

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self._counters = MemoryCounters(clock)

    def instance(self) -> Counters:
        return self._counters

    async def lose_cache(self) -> None:
        self._counters = MemoryCounters(self.clock)

    async def aclose(self) -> None:
        return None


class RedisBackend:
    """Each ``instance()`` is another gateway process (own connection pool) sharing one Redis and prefix."""

    name = "redis"

    def __init__(self, clock: ManualClock, prefix: str) -> None:
        self.clock = clock
        self.prefix = prefix
        self.admin: Redis = redis_client()
        self._clients: list[Redis] = []

    def instance(self) -> RedisCounters:
        client = redis_client()
        self._clients.append(client)
        return RedisCounters(client, self.clock, prefix=self.prefix)

    async def lose_cache(self) -> None:
        """What FLUSHALL does to this gateway's keys."""
        await delete_prefixed(self.admin, self.prefix)

    async def aclose(self) -> None:
        await delete_prefixed(self.admin, self.prefix)
        for client in [*self._clients, self.admin]:
            await client.aclose()


class SqlBackend:
    """SQL counters (SQLite file or PostgreSQL schema): each ``instance()`` is another gateway process's counters.
    Instances share a few engines (connection pools) round-robin, so a test never runs out of connections."""

    ENGINES = 4

    def __init__(self, clock: ManualClock, name: str, engine_factory: Callable[[], AsyncEngine]) -> None:
        self.clock = clock
        self.name = name
        self._engine_factory = engine_factory
        self._engines: list[AsyncEngine] = []
        self._handed_out = 0

    def instance(self) -> SqlCounters:
        if len(self._engines) < self.ENGINES:
            self._engines.append(self._engine_factory())
        engine = self._engines[self._handed_out % len(self._engines)]
        self._handed_out += 1
        return SqlCounters(engine, self.clock)

    async def lose_cache(self) -> None:
        """Every counter and hold row gone: what the counters are rebuilt from is the ledger alone."""
        engine = self._engine_factory()
        try:
            async with engine.begin() as connection:
                await connection.execute(delete(counters))
                await connection.execute(delete(counter_holds))
        finally:
            await engine.dispose()

    async def aclose(self) -> None:
        for engine in self._engines:
            await engine.dispose()


Backend = MemoryBackend | RedisBackend | SqlBackend
