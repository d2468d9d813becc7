"""Counters in SQL: the admission store while Redis is unreachable (``counter_fallback: database``).

Atomicity. Every operation is one transaction that locks the counter rows it touches in one order (``SELECT ...
ORDER BY counter_key FOR UPDATE`` on PostgreSQL, where the sort comes before the row locks; on SQLite ``BEGIN
IMMEDIATE`` serialises writers, and one writer per process queues in-process instead of busy-waiting). So check
and hold are one step across instances, decided by ``admission.decide``: the same rule as in memory and Redis, and
the SPEC overshoot bounds hold whatever the number of instances.

Cache of the ledger. A counter row is first created as a placeholder (``spent_nanos`` NULL, committed on its own so
the locking statement sees it), then loaded through the ``CounterLoader`` by the first transaction that locks it,
inside the lock: concurrent loaders wait on the row and store the ledger value once, never N times it. Each load
gives the row a new ``incarnation``, and a hold records the incarnation of every row it was placed on. A settle
is exact when its hold was placed on the current incarnation (its ledger record was appended after the hold, so
after the load). Otherwise (a hold placed in Redis, or a row reloaded since) the row may already include the
record: the cost is added (fail closed: a cost counted twice at worst) and the row marked ``stale``, to be
recomputed from the ledger the next time it is locked with no hold on it, which is exact. A hold that expires
unsettled marks its rows stale too: its request may have reached the ledger before its instance died.

Lock order: a hold row before counter rows (settle, release, the expiry sweep with ``SKIP LOCKED``), counter rows
in ``counter_key`` order. A deadlock the database still detects (rows committed between two statements) is
retried, as is a conflicting insert of the same new row.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledgergate.domain.admission import (
    Admitted,
    BudgetMode,
    CounterKey,
    CounterLine,
    Decision,
    LineState,
    decide,
    hold_amount,
    settle_amount,
)
from ledgergate.domain.ports import Clock, CounterLoader, CounterStoreUnavailable
from ledgergate.storage.sql.counter_rows import (
    EXPIRED,
    HELD,
    SETTLED,
    SWEEP_BATCH,
    LockedRows,
    any_hold_due,
    counter_key_text,
    lock_due_holds,
    lock_hold,
    lock_rows,
    peek_rows,
    write_back,
)
from ledgergate.storage.sql.tables import counter_holds, counters

_ATTEMPTS = 8  # transactions per call before giving up (retried: deadlock, insert race, row deleted meanwhile)
_RETRIED_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
_CLEANUP_INTERVAL_S = 60.0

_T = TypeVar("_T")


class _RowsMissing(Exception):
    """Rows to lock do not exist yet: create their placeholders, then run the transaction again."""

    def __init__(self, lines: Sequence[CounterLine]) -> None:
        super().__init__(f"{len(lines)} counter rows to create")
        self.lines = lines


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


class SqlCounters:
    """``Counters`` in SQL tables shared by every instance on the same database (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        counter_grace_s: int = 3600,
        hold_retention_s: float = 86_400,
        settled_retention_s: float = 86_400,
        owns_engine: bool = False,
    ) -> None:
        """``engine``: give it a pool of its own, not the loader's: a transaction holds its connection while the
        loader queries the ledger, so sharing one pool could leave the loader waiting for a connection forever."""
        self.engine = engine
        self._clock = clock
        self._grace_s = counter_grace_s
        self._hold_retention_s = hold_retention_s
        self._settled_retention_s = settled_retention_s
        self._owns_engine = owns_engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._sqlite_writer = asyncio.Lock()
        insert: Any = sqlite.insert if self._sqlite else postgresql.insert
        self._insert_placeholders = insert(counters).on_conflict_do_nothing()
        self._next_cleanup_s = 0.0

    async def aclose(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()

    # -- transactions -----------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        if not self._sqlite:
            async with self.engine.begin() as connection:
                yield connection
            return
        async with self._sqlite_writer, self.engine.connect() as connection:
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                await connection.rollback()
                raise
            await connection.commit()

    async def _atomic(self, body: Callable[[AsyncConnection], Awaitable[_T]]) -> _T:
        """Run ``body`` in one transaction, again after the retryable failures; database outages become the port's
        ``CounterStoreUnavailable`` (the caller refuses with 503, never admits without a hold)."""
        last: BaseException | None = None
        for _ in range(_ATTEMPTS):
            try:
                async with self._transaction() as connection:
                    return await body(connection)
            except _RowsMissing as missing:
                await self._create_placeholders(missing.lines)
            except IntegrityError as exc:  # two transactions inserted the same new hold or marker row
                last = exc
            except DBAPIError as exc:
                if _sqlstate(exc) in _RETRIED_SQLSTATES:
                    last = exc
                    continue
                if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
                    raise CounterStoreUnavailable(f"SQL counter store unavailable: {exc.orig!r}") from exc
                raise
            except (OSError, TimeoutError) as exc:
                raise CounterStoreUnavailable(f"SQL counter store unavailable: {exc!r}") from exc
        raise CounterStoreUnavailable(f"SQL counter transaction failed {_ATTEMPTS} times: {last!r}")

    async def _create_placeholders(self, lines: Sequence[CounterLine]) -> None:
        unique = {counter_key_text(line.key): line for line in lines}
        # Sorted: two instances inserting overlapping rows wait on each other in one order, never in a cycle.
        values = [
            {
                "counter_key": name,
                "spent_nanos": None,
                "held_nanos": 0,
                "period_end_s": unique[name].period_end_s,
                "incarnation": "",
                "stale": False,
            }
            for name in sorted(unique)
        ]
        try:
            async with self._transaction() as connection:
                await connection.execute(self._insert_placeholders, values)
        except (DBAPIError, OSError, TimeoutError):
            pass  # the retried transaction meets the same failure and reports it

    async def _prepare(
        self, connection: AsyncConnection, lines: Sequence[CounterLine], loader: CounterLoader, now_s: float
    ) -> LockedRows:
        """Lock the rows of ``lines`` (and of holds due to expire), expire those holds, and load from the ledger
        every row that is a placeholder, or stale with no hold on it."""
        wanted = {counter_key_text(line.key): line for line in lines}
        due = await lock_due_holds(connection, now_s)
        locked = LockedRows(await lock_rows(connection, wanted.keys() | {n for d in due for n, _, _ in d.placed_on}))
        missing = [line for name, line in wanted.items() if name not in locked.rows]
        if missing:
            raise _RowsMissing(missing)
        for hold in due:
            locked.unhold(hold, mark_stale=True)
        locked.expired = len(due)
        if due:
            h = counter_holds.c
            await connection.execute(
                update(counter_holds)
                .where(h.hold_id.in_([hold.hold_id for hold in due]))
                .values(state=EXPIRED, forget_after_s=h.expires_at_s + self._hold_retention_s)
            )
        to_load = [
            name
            for name, row in locked.rows.items()
            if name in wanted and (row.spent_nanos is None or (row.stale and row.held_nanos == 0))
        ]
        if to_load:
            sums = await loader([wanted[name].key for name in to_load], [wanted[name].period_end_s for name in to_load])
            for name, spent in zip(to_load, sums, strict=True):
                row = locked.rows[name]
                row.spent_nanos, row.stale, row.incarnation = int(spent), False, uuid.uuid4().hex
                locked.dirty.add(name)
        return locked

    # -- the port ---------------------------------------------------------------------------------------------------

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
        await self._maybe_clean_up()

        async def body(connection: AsyncConnection) -> Decision:
            h = counter_holds.c
            existing = (await connection.execute(select(h.amount_nanos).where(h.hold_id == hold_id))).scalar()
            if existing is not None:  # a retried hold is the same hold
                return Admitted(int(existing))
            now_s = self._clock.now_s()
            locked = await self._prepare(connection, lines, loader, now_s)
            names = [counter_key_text(line.key) for line in lines]
            states = [locked.rows[name].state() for name in names]
            limits = [line.limit_nanos for line in lines]
            decision = decide(states, limits, max_cost_nanos, min_cost_nanos, mode, [line.unit for line in lines])
            if isinstance(decision, Admitted):
                placed_on = []
                for name, line in zip(names, lines, strict=True):
                    amount = hold_amount(line, decision)
                    locked.rows[name].held_nanos += amount
                    locked.dirty.add(name)
                    placed_on.append((name, locked.rows[name].incarnation, amount))
                await connection.execute(
                    counter_holds.insert().values(
                        hold_id=hold_id,
                        amount_nanos=decision.hold_nanos,
                        placed_on=orjson.dumps(placed_on).decode(),
                        expires_at_s=expires_at_s,
                        state=HELD,
                        forget_after_s=expires_at_s + self._hold_retention_s,
                    )
                )
            await write_back(connection, locked)
            return decision

        return await self._atomic(body)

    async def settle(self, hold_id: str, lines: Sequence[CounterLine], cost_nanos: int) -> None:
        """Turn the hold into spend on every row that is loaded; repeat-safe per hold id.

        The charger appends the ledger record before this call, so a row that is absent or not loaded yet is left
        alone: its load will read the record. A row loaded since the hold was placed (or a hold placed elsewhere)
        gets the cost and is marked stale (see the module docstring).
        """

        async def body(connection: AsyncConnection) -> None:
            hold = await lock_hold(connection, hold_id)
            if hold is not None and hold.state == SETTLED:
                return
            placed = {name: incarnation for name, incarnation, _ in (hold.placed_on if hold else [])}
            amounts = [(counter_key_text(line.key), settle_amount(line, cost_nanos)) for line in lines]
            locked = LockedRows(await lock_rows(connection, placed.keys() | {name for name, _ in amounts}))
            if hold is not None and hold.state == HELD:
                locked.unhold(hold, mark_stale=False)
            for name, amount in amounts:
                row = locked.rows.get(name)
                if row is None or row.spent_nanos is None or amount == 0:
                    continue
                row.spent_nanos += amount
                if placed.get(name) != row.incarnation:
                    row.stale = True
                locked.dirty.add(name)
            await write_back(connection, locked)
            forget_after_s = self._clock.now_s() + self._settled_retention_s
            if hold is None:
                await connection.execute(
                    counter_holds.insert().values(
                        hold_id=hold_id,
                        amount_nanos=0,
                        placed_on="[]",
                        expires_at_s=0.0,
                        state=SETTLED,
                        forget_after_s=forget_after_s,
                    )
                )
            else:
                await connection.execute(
                    update(counter_holds)
                    .where(counter_holds.c.hold_id == hold_id)
                    .values(state=SETTLED, forget_after_s=forget_after_s)
                )

        await self._atomic(body)

    async def release(self, hold_id: str) -> None:
        async def body(connection: AsyncConnection) -> None:
            hold = await lock_hold(connection, hold_id)
            if hold is None or hold.state == SETTLED:
                return
            if hold.state == HELD:
                locked = LockedRows(await lock_rows(connection, {name for name, _, _ in hold.placed_on}))
                locked.unhold(hold, mark_stale=False)
                await write_back(connection, locked)
            await connection.execute(delete(counter_holds).where(counter_holds.c.hold_id == hold_id))

        await self._atomic(body)

    async def adjust(self, line: CounterLine, delta_nanos: int, loader: CounterLoader) -> LineState:
        """Add ``delta_nanos`` to one counter, loading it first if absent. The caller writes the adjustment record
        only afterwards, so the load cannot include it: adding the delta is exact."""

        async def body(connection: AsyncConnection) -> LineState:
            locked = await self._prepare(connection, [line], loader, self._clock.now_s())
            name = counter_key_text(line.key)
            row = locked.rows[name]
            row.spent_nanos = row.state().spent_nanos + delta_nanos
            locked.dirty.add(name)
            await write_back(connection, locked)
            return row.state()

        return await self._atomic(body)

    async def read(self, lines: Sequence[CounterLine], loader: CounterLoader) -> list[LineState]:
        """Without locks when every row is loaded and current and no hold is due to expire (reads follow every
        settle, for alerts: they must not queue behind admissions); else in a locking transaction that loads."""
        try:
            async with self.engine.connect() as connection:
                rows = await peek_rows(connection, {counter_key_text(line.key) for line in lines})
                due = await any_hold_due(connection, self._clock.now_s())
        except (DBAPIError, OSError, TimeoutError) as exc:
            raise CounterStoreUnavailable(f"SQL counter store unavailable: {exc!r}") from exc
        current = [rows.get(counter_key_text(line.key)) for line in lines]
        if not due and all(r and r.spent_nanos is not None and not (r.stale and r.held_nanos == 0) for r in current):
            return [row.state() for row in current if row is not None]

        async def body(connection: AsyncConnection) -> list[LineState]:
            locked = await self._prepare(connection, lines, loader, self._clock.now_s())
            await write_back(connection, locked)
            return [locked.rows[counter_key_text(line.key)].state() for line in lines]

        return await self._atomic(body)

    async def held_count(self) -> int:
        async def body(connection: AsyncConnection) -> tuple[int, int]:
            locked = await self._prepare(connection, [], _no_loader, self._clock.now_s())
            await write_back(connection, locked)
            h = counter_holds.c
            live = (await connection.execute(select(func.count()).where(h.state == HELD))).scalar()
            return locked.expired, int(live or 0)

        while True:
            expired, live = await self._atomic(body)
            if expired < SWEEP_BATCH:  # a full batch: more may be due
                return live

    # -- upkeep -----------------------------------------------------------------------------------------------------

    async def _maybe_clean_up(self) -> None:
        """Forget settled and long-expired holds, and counters of periods that ended ``counter_grace_s`` ago with
        nothing held (a later settle finds the row absent and leaves the cost to the ledger, where it is)."""
        now_s = self._clock.now_s()
        if now_s < self._next_cleanup_s:
            return
        self._next_cleanup_s = now_s + _CLEANUP_INTERVAL_S
        h, c = counter_holds.c, counters.c

        async def body(connection: AsyncConnection) -> None:
            await connection.execute(delete(counter_holds).where(h.state != HELD, h.forget_after_s <= now_s))
            await connection.execute(delete(counters).where(c.period_end_s + self._grace_s <= now_s, c.held_nanos == 0))

        await self._atomic(body)


async def _no_loader(keys: Sequence[CounterKey], period_ends_s: Sequence[int]) -> list[int]:
    raise AssertionError("expiring holds loads no counter")
