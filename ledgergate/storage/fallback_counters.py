"""Admission that survives a Redis outage (``counter_fallback: database``): Redis counters normally, SQL counters
(PostgreSQL row locks) while Redis is unreachable. A request is never forwarded without a hold in one of them.

Every instance follows one shared mode (``storage/sql/counter_mode.py``), never its own view of Redis: two
instances admitting on two stores would each see only half the spend (N instances, N times a budget).

Switch to SQL. An instance whose Redis call fails sets the mode to ``database`` (which invalidates the SQL
counters: everything charged through Redis since they were last used is only in the ledger) and admits through
SQL. Instances learn the mode by polling it every ``poll_interval_s``; so that none still admits through Redis
while SQL already admits, SQL admission starts only ``fence_s`` after the switch (requests wait meanwhile).

Switch back. While in ``database`` mode, every instance probes Redis and reports whether it reaches it. Once every
live instance does, one of them deletes the Redis counters (they missed every charge made through SQL; they reload
from the ledger, which has all of them) and sets the mode to ``redis``. Admission keeps running through SQL until
``fence_s`` after that switch, then every instance moves to Redis at the same instant (clocks synchronised).

Holds are settled where they were placed; if that is Redis and it is unreachable, the cost goes to the SQL
counters. A hold settled in one store while the other admits is also settled, as a hold that store never saw,
into the admitting one: the cost is added and the counter marked stale, so it is recomputed from the ledger once no
hold is on it (fail closed: a cost counted twice at worst, until then).

Bound during a switch (see docs/deployment.md): holds placed in one store are invisible to the other. Requests in
flight when admission changes stores (their maximum costs) can push a window over its limit once, on top of the
SPEC bound; their costs reach the new store when they settle. Between switches, the SPEC bounds hold exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ledgergate.domain.admission import Admitted, BudgetMode, CounterLine, Decision, LineState
from ledgergate.domain.ports import Clock, CounterLoader, Counters, CounterStoreUnavailable
from ledgergate.storage.redis_counters import RedisCounters
from ledgergate.storage.sql.counter_mode import CounterStore, ModeState, SqlCounterMode
from ledgergate.storage.sql.sql_counters import SqlCounters

log = logging.getLogger(__name__)

_PLACEMENTS_REMEMBERED = 100_000  # holds in flight on this instance; a forgotten one settles on the admitting store
_DELETE_BATCH = 500


class FallbackCounters:
    """``Counters`` on Redis, on SQL while Redis is unreachable; see the module docstring."""

    def __init__(
        self,
        redis_counters: RedisCounters,
        sql_counters: SqlCounters,
        mode: SqlCounterMode,
        redis: Redis,
        clock: Clock,
        *,
        redis_prefix: str,
        poll_interval_s: float = 0.5,
        fence_s: float | None = None,
        member_ttl_s: float | None = None,
    ) -> None:
        """``redis``: the client ``redis_counters`` uses (for probes, and to delete its counters on recovery);
        ``fence_s``: how long a switch waits for every instance to learn of it (default 3 polls)."""
        self.redis_counters = redis_counters
        self.sql_counters = sql_counters
        self._mode = mode
        self._redis = redis
        self._clock = clock
        self._counter_pattern = f"{redis_prefix}c:*"  # RedisCounters.counter_name: every counter, no hold
        self._poll_interval_s = poll_interval_s
        self._fence_s = 3 * poll_interval_s if fence_s is None else fence_s
        # Probing takes up to Redis's timeouts: a member is live while its heartbeat is younger than this.
        self._member_ttl_s = max(10.0, 10 * poll_interval_s) if member_ttl_s is None else member_ttl_s
        self.instance_id = uuid.uuid4().hex
        self._state = ModeState(CounterStore.REDIS, -1, 0.0)
        self._redis_ok = True
        self._placed: OrderedDict[str, CounterStore] = OrderedDict()
        self._switching = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None

    @property
    def state(self) -> ModeState:
        return self._state

    async def start(self) -> None:
        self._adopt(await self._mode.read())
        self._poller = asyncio.create_task(self._poll_forever(), name="counter-store-mode")

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        await self._mode.leave(self.instance_id)
        await self.sql_counters.aclose()
        await self.redis_counters.aclose()

    # -- the mode ---------------------------------------------------------------------------------------------------

    def _adopt(self, state: ModeState) -> None:
        if state.epoch > self._state.epoch:
            if state.store is not self._state.store:
                log.warning("counter store: %s from epoch %d", state.store.value, state.epoch)
            self._state = state

    def admitting(self) -> CounterStore:
        """The store that admits (or, after a switch to SQL, is about to): Redis only once the fence after the switch
        back to it has passed."""
        state = self._state
        if state.store is CounterStore.DATABASE or self._clock.now_s() < state.changed_at_s + self._fence_s:
            return CounterStore.DATABASE
        return CounterStore.REDIS

    async def _admission_store(self) -> CounterStore:
        """``admitting()``, after waiting out the fence of a switch to SQL (Redis is unusable anyway)."""
        state = self._state
        if state.store is CounterStore.DATABASE:
            wait_s = state.changed_at_s + self._fence_s - self._clock.now_s()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
        return self.admitting()

    async def _enter_database(self) -> None:
        """Redis failed: switch every instance to SQL (raises ``CounterStoreUnavailable`` if SQL fails too)."""
        self._redis_ok = False
        seen = self._state
        if seen.store is CounterStore.DATABASE:
            return
        async with self._switching:
            if self._state.epoch == seen.epoch:
                self._adopt(await self._mode.switch(seen.epoch, CounterStore.DATABASE, self._clock.now_s()))

    async def _poll_forever(self) -> None:
        failing = False  # log the first failure of a run, not one per poll
        while True:
            await asyncio.sleep(self._poll_interval_s)
            try:
                await self.poll()
            except Exception as exc:
                if not failing:
                    log.warning("counter store mode cannot be polled (retrying): %r", exc)
                failing = True
            else:
                failing = False

    async def poll(self) -> None:
        """One round: probe Redis while SQL admits, heartbeat, follow the shared mode, switch back when all can."""
        if self._state.store is CounterStore.DATABASE or not self._redis_ok:
            self._redis_ok = await self._probe()
        state, unreachable = await self._mode.poll(
            self.instance_id, self._redis_ok, self._clock.now_s(), self._member_ttl_s
        )
        self._adopt(state)
        fence_passed = self._clock.now_s() >= state.changed_at_s + self._fence_s
        if state.store is CounterStore.DATABASE and self._redis_ok and not unreachable and fence_passed:
            await self._return_to_redis(state)

    async def _probe(self) -> bool:
        try:
            await self._redis.ping()
        except (RedisError, OSError):
            return False
        return True

    async def _return_to_redis(self, state: ModeState) -> None:
        # Before the switch: nobody loads a Redis counter until the fence after it has passed.
        try:
            await self._delete_redis_counters()
        except (RedisError, OSError) as exc:
            log.warning("counter store: Redis counters not reset, staying on SQL: %r", exc)
            self._redis_ok = False
            return
        async with self._switching:
            self._adopt(await self._mode.switch(state.epoch, CounterStore.REDIS, self._clock.now_s()))

    async def _delete_redis_counters(self) -> None:
        batch: list[str] = []
        async for name in self._redis.scan_iter(match=self._counter_pattern, count=1000):
            batch.append(name)
            if len(batch) >= _DELETE_BATCH:
                await self._redis.unlink(*batch)
                batch = []
        if batch:
            await self._redis.unlink(*batch)

    # -- routing ----------------------------------------------------------------------------------------------------

    def _store(self, which: CounterStore) -> Counters:
        return self.redis_counters if which is CounterStore.REDIS else self.sql_counters

    def _remember(self, hold_id: str, where: CounterStore) -> None:
        self._placed[hold_id] = where
        if len(self._placed) > _PLACEMENTS_REMEMBERED:
            self._placed.popitem(last=False)

    async def try_hold(
        self,
        hold_id: str,
        lines: Sequence[CounterLine],
        max_cost_nanos: int,
        min_cost_nanos: int,
        mode: BudgetMode,
        expires_at_s: float,
        loader: CounterLoader,
    ) -> Decision:
        where = await self._admission_store()
        if where is CounterStore.REDIS:
            try:
                decision = await self.redis_counters.try_hold(
                    hold_id, lines, max_cost_nanos, min_cost_nanos, mode, expires_at_s, loader
                )
            except CounterStoreUnavailable:
                await self._enter_database()
                where = await self._admission_store()
                if where is CounterStore.REDIS:
                    raise  # the mode moved back to Redis meanwhile: refuse, the client retries
            else:
                self._redis_ok = True
                if isinstance(decision, Admitted):
                    self._remember(hold_id, where)
                return decision
        decision = await self.sql_counters.try_hold(
            hold_id, lines, max_cost_nanos, min_cost_nanos, mode, expires_at_s, loader
        )
        if isinstance(decision, Admitted):
            self._remember(hold_id, where)
        return decision

    async def settle(self, hold_id: str, lines: Sequence[CounterLine], cost_nanos: int) -> None:
        home = self._placed.pop(hold_id, None) or self.admitting()
        settled = {home}
        if home is CounterStore.REDIS:
            try:
                await self.redis_counters.settle(hold_id, lines, cost_nanos)
            except CounterStoreUnavailable:
                await self._enter_database_quietly()
                await self.sql_counters.settle(hold_id, lines, cost_nanos)
                settled = {CounterStore.DATABASE}
        else:
            await self.sql_counters.settle(hold_id, lines, cost_nanos)
        admitting = self.admitting()
        if admitting not in settled:
            # The admitting store never saw this hold, and may have loaded its counters before the record.
            try:
                await self._store(admitting).settle(hold_id, lines, cost_nanos)
            except CounterStoreUnavailable:
                if admitting is CounterStore.DATABASE:
                    raise
                await self._enter_database_quietly()  # Redis counters are rebuilt before they admit again

    async def release(self, hold_id: str) -> None:
        home = self._placed.pop(hold_id, None)
        if home is not CounterStore.DATABASE:
            try:
                await self.redis_counters.release(hold_id)
            except CounterStoreUnavailable:
                await self._enter_database_quietly()  # the Redis hold expires on its own
        if home is not CounterStore.REDIS:
            await self.sql_counters.release(hold_id)

    async def adjust(self, line: CounterLine, delta_nanos: int, loader: CounterLoader) -> LineState:
        if await self._admission_store() is CounterStore.REDIS:
            try:
                return await self.redis_counters.adjust(line, delta_nanos, loader)
            except CounterStoreUnavailable:
                await self._enter_database()
                if await self._admission_store() is CounterStore.REDIS:
                    raise
        return await self.sql_counters.adjust(line, delta_nanos, loader)

    async def read(self, lines: Sequence[CounterLine], loader: CounterLoader) -> list[LineState]:
        if await self._admission_store() is CounterStore.REDIS:
            try:
                return await self.redis_counters.read(lines, loader)
            except CounterStoreUnavailable:
                await self._enter_database()
                if await self._admission_store() is CounterStore.REDIS:
                    raise
        return await self.sql_counters.read(lines, loader)

    async def held_count(self) -> int:
        """Live holds in both stores (Redis's only when it answers)."""
        try:
            in_redis = await self.redis_counters.held_count()
        except CounterStoreUnavailable:
            in_redis = 0
        return in_redis + await self.sql_counters.held_count()

    async def _enter_database_quietly(self) -> None:
        try:
            await self._enter_database()
        except CounterStoreUnavailable as exc:
            log.warning("counter store: cannot switch to SQL: %s", exc)
