"""Row access of the SQL counters: counter and hold rows as the transactions of ``sql_counters`` lock, change
in memory and write back. Counter rows are always locked in ``counter_key`` order (see ``sql_counters``)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Executable, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ledgergate.domain.admission import CounterKey, LineState
from ledgergate.storage.sql.tables import counter_holds, counters

HELD, EXPIRED, SETTLED = "held", "expired", "settled"
SWEEP_BATCH = 100  # expired holds dropped per transaction


def counter_key_text(key: CounterKey) -> str:
    """The row key of a counter: every field of ``CounterKey`` as canonical JSON, so the table follows its shape."""
    return orjson.dumps(list(key)).decode()


@dataclass(slots=True)
class CounterRow:
    spent_nanos: int | None  # None: a placeholder, not loaded from the ledger yet
    held_nanos: int
    incarnation: str
    stale: bool

    def state(self) -> LineState:
        assert self.spent_nanos is not None, "a counter is loaded before it is read"
        return LineState(self.spent_nanos, self.held_nanos)


@dataclass(slots=True)
class HoldRow:
    hold_id: str
    state: str
    placed_on: list[tuple[str, str, int]]  # (counter_key, incarnation, amount held on it) per line

    @staticmethod
    def decode(hold_id: str, state: str, placed_on: str) -> HoldRow:
        return HoldRow(hold_id, state, [(str(k), str(i), int(a)) for k, i, a in orjson.loads(placed_on)])


@dataclass(slots=True)
class LockedRows:
    """Counter rows locked by one transaction, changed in memory and written back once at its end."""

    rows: dict[str, CounterRow]
    dirty: set[str] = field(default_factory=set)
    expired: int = 0  # holds this transaction expired

    def unhold(self, hold: HoldRow, *, mark_stale: bool) -> None:
        """Take a held hold off the rows it was placed on (only their incarnation: a reloaded row never had it)."""
        for name, incarnation, amount in hold.placed_on:
            row = self.rows.get(name)
            if row is None:
                continue
            if row.incarnation == incarnation:
                row.held_nanos -= amount
            if mark_stale and row.spent_nanos is not None:
                row.stale = True
            self.dirty.add(name)


async def lock_rows(connection: AsyncConnection, names: Collection[str]) -> dict[str, CounterRow]:
    """The existing rows among ``names``, locked in ``counter_key`` order."""
    return await _select_rows(connection, names, for_update=True)


async def peek_rows(connection: AsyncConnection, names: Collection[str]) -> dict[str, CounterRow]:
    """The existing rows among ``names`` as last committed, without locking them."""
    return await _select_rows(connection, names, for_update=False)


async def _select_rows(
    connection: AsyncConnection, names: Collection[str], *, for_update: bool
) -> dict[str, CounterRow]:
    if not names:
        return {}
    c = counters.c
    query = (
        select(c.counter_key, c.spent_nanos, c.held_nanos, c.incarnation, c.stale)
        .where(c.counter_key.in_(sorted(names)))
        .order_by(c.counter_key)
    )
    if for_update:
        query = query.with_for_update()
    result = await connection.execute(query)
    return {row[0]: CounterRow(row[1], row[2], row[3], bool(row[4])) for row in result}


async def lock_hold(connection: AsyncConnection, hold_id: str) -> HoldRow | None:
    h = counter_holds.c
    query = select(h.state, h.placed_on).where(h.hold_id == hold_id).with_for_update()
    row = (await connection.execute(query)).first()
    return None if row is None else HoldRow.decode(hold_id, row[0], row[1])


async def lock_due_holds(connection: AsyncConnection, now_s: float) -> list[HoldRow]:
    h = counter_holds.c
    query = (
        select(h.hold_id, h.state, h.placed_on)
        .where(h.state == HELD, h.expires_at_s <= now_s)
        .order_by(h.hold_id)
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)  # another transaction is expiring (or settling) those
    )
    return [HoldRow.decode(row[0], row[1], row[2]) for row in await connection.execute(query)]


async def any_hold_due(connection: AsyncConnection, now_s: float) -> bool:
    h = counter_holds.c
    query = select(h.hold_id).where(h.state == HELD, h.expires_at_s <= now_s).limit(1)
    return (await connection.execute(query)).first() is not None


async def write_back(connection: AsyncConnection, locked: LockedRows) -> None:
    if not locked.dirty:
        return
    c = counters.c
    statement = (
        update(counters)
        .where(c.counter_key == bindparam("b_key"))
        .values(
            spent_nanos=bindparam("b_spent"),
            held_nanos=bindparam("b_held"),
            incarnation=bindparam("b_incarnation"),
            stale=bindparam("b_stale"),
        )
    )
    params = []
    for name in sorted(locked.dirty):
        row = locked.rows[name]
        params.append(
            {"b_key": name, "b_spent": row.spent_nanos, "b_held": row.held_nanos}
            | {"b_incarnation": row.incarnation, "b_stale": row.stale}
        )
    await connection.execute(statement, params)


def invalidation_statements() -> list[Executable]:
    """Make every SQL counter be recomputed from the ledger before it is next used: rows with nothing held are
    deleted (reloaded on demand), the others marked stale (recounted once quiet). Run when admission moves to
    SQL: what was charged through Redis since the rows were last used is only in the ledger."""
    c = counters.c
    return [delete(counters).where(c.held_nanos == 0), update(counters).values(stale=True)]
