"""Daily rollups' coverage: the timezone they are kept in, the background backfill of the days written before they
were kept, and the read that tells reports whether they may use them (docs/decisions/0006).

Why the backfill is exact while writers race it: every writer keeps daily rows from before the backfill starts,
and each day is filled in one transaction with ``daily += hourly(day) - daily(day)``, both read in that
transaction's snapshot and added to the latest row. A record committed before the snapshot is in both sums (its
part of the difference is zero) or, if written before daily rows were kept, in the hourly sum only (added here);
a record committed after it is in neither and is added by its own writer. So the result is every record once,
and filling a day again adds nothing: a crashed, repeated or concurrent backfill cannot double count.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledgergate.domain.charging import EntityType
from ledgergate.storage.sql.rollup_rows import local_day_us
from ledgergate.storage.sql.tables import (
    DAILY_BACKFILLING,
    DAILY_COMPLETE,
    DAILY_UNSUPPORTED,
    ROLLUP_HOUR_S,
    ROLLUP_RECORD_ID,
    ROLLUP_RECORD_TYPE,
    ROLLUP_SUMS,
    rollup_coverage,
    spend_rollups,
)

logger = logging.getLogger(__name__)

_HOUR_US = ROLLUP_HOUR_S * 1_000_000
# The entity types rollup rows are kept for; listed so that each is one range of the (type, hour) index.
_ROLLUP_TYPES = [entity_type.value for entity_type in EntityType] + [ROLLUP_RECORD_TYPE]
_RETRY_S = 30.0
_MIN_PAUSE_S = 0.01


def _fill_day_sql(dialect: str) -> str:
    # Sorted as the writers sort their upserts (code point order, hence COLLATE "C" on PostgreSQL), so a
    # backfill and a writer never lock two daily rows in opposite orders.
    collate = ' COLLATE "C"' if dialect == "postgresql" else ""
    differs = " OR ".join(f"h.{name} <> COALESCE(d.{name}, 0)" for name in ROLLUP_SUMS)
    return f"""
INSERT INTO spend_daily_rollups
    (timezone, entity_type, entity_id, model, day_start_s, {", ".join(ROLLUP_SUMS)})
SELECT CAST(:timezone AS VARCHAR(64)), h.entity_type, h.entity_id, h.model, CAST(:day_start_s AS BIGINT),
       {", ".join(f"h.{name} - COALESCE(d.{name}, 0)" for name in ROLLUP_SUMS)}
FROM (
    SELECT entity_type, entity_id, model, {", ".join(f"SUM({name}) AS {name}" for name in ROLLUP_SUMS)}
    FROM spend_rollups
    WHERE entity_type IN :types AND hour_start_s >= :day_start_s AND hour_start_s < :day_end_s
    GROUP BY entity_type, entity_id, model
) h
LEFT JOIN spend_daily_rollups d
    ON d.timezone = :timezone AND d.entity_type = h.entity_type AND d.entity_id = h.entity_id
    AND d.day_start_s = :day_start_s AND d.model = h.model
WHERE {differs}
ORDER BY h.entity_type{collate}, h.entity_id{collate}, h.model{collate}
ON CONFLICT (timezone, entity_type, entity_id, day_start_s, model) DO UPDATE SET
    {", ".join(f"{name} = spend_daily_rollups.{name} + excluded.{name}" for name in ROLLUP_SUMS)}
"""


async def register_timezone(engine: AsyncEngine, timezone: str) -> str:
    """Make ``timezone`` the one daily rows are kept in (before this instance's writer starts); its state.

    Another timezone's coverage is dropped: no writer keeps its rows any more, so they go stale (if that timezone
    comes back, its backfill tops them up exactly). An empty ledger has nothing to fill: complete at once.
    """
    insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    coverage = rollup_coverage.c
    async with engine.begin() as connection:
        await connection.execute(delete(rollup_coverage).where(coverage.timezone != timezone))
        await connection.execute(
            insert(rollup_coverage)
            .values(timezone=timezone, state=DAILY_BACKFILLING, backfilled_before_s=None, updated_at_us=_now_us())
            .on_conflict_do_nothing()
        )
        state = str(await connection.scalar(select(coverage.state).where(coverage.timezone == timezone)))
        if state == DAILY_BACKFILLING and await _hour_range(connection) is None:
            await _set_state(connection, timezone, DAILY_COMPLETE)
            state = DAILY_COMPLETE
    return state


async def complete_timezone(connection: AsyncConnection) -> str | None:
    """The timezone whose daily rows hold every record, if any."""
    coverage = rollup_coverage.c
    found = await connection.scalar(select(coverage.timezone).where(coverage.state == DAILY_COMPLETE).limit(1))
    return None if found is None else str(found)


def whole_days(bounds_us: Sequence[int], tz: ZoneInfo) -> list[bool]:
    """For each ``[bounds_us[i], bounds_us[i + 1])``: whether it is exactly one local day of ``tz``."""
    return [local_day_us(start, tz) == (start, end) for start, end in itertools.pairwise(bounds_us)]


class DailyBackfill:
    """Fills the days written before daily rows were kept, one day per transaction, oldest first.

    Each transaction starts by updating the timezone's coverage row: that row lock (the write lock on SQLite)
    makes concurrent runners (several instances) take turns, and each re-reads the progress under it, so no day
    is filled twice and a runner that dies is simply continued by the next one to start.
    """

    def __init__(self, engine: AsyncEngine, timezone: str) -> None:
        self._engine = engine
        self._timezone = timezone
        self._tz = ZoneInfo(timezone)
        self._fill = text(_fill_day_sql(engine.dialect.name)).bindparams(bindparam("types", expanding=True))

    async def run(self) -> str:
        """Fill until done, retrying after errors; the final state (``""`` if another timezone took over)."""
        while True:
            try:
                return await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("daily rollup backfill failed; retrying in %.0f s", _RETRY_S)
                await asyncio.sleep(_RETRY_S)

    async def _run_once(self) -> str:
        # Read once the writers keep daily rows: every record without them is in an hour of this range.
        async with self._engine.connect() as connection:
            hours = await _hour_range(connection)
        while True:
            started_s = time.perf_counter()
            async with self._engine.begin() as connection:
                claimed = (
                    await connection.execute(
                        update(rollup_coverage)
                        .where(rollup_coverage.c.timezone == self._timezone)
                        .values(updated_at_us=_now_us())
                        .returning(rollup_coverage.c.state, rollup_coverage.c.backfilled_before_s)
                    )
                ).one_or_none()
                if claimed is None:
                    return ""
                state, done_before_s = str(claimed[0]), claimed[1]
                if state != DAILY_BACKFILLING:
                    return state
                day = await self._next_day(connection, hours, done_before_s)
                if day is None:
                    await _set_state(connection, self._timezone, DAILY_COMPLETE)
                    return DAILY_COMPLETE
                start_us, end_us = day
                if start_us % _HOUR_US or end_us % _HOUR_US:
                    # Hours straddle this day's bounds: the hourly rows cannot say which day their records are in.
                    await _set_state(connection, self._timezone, DAILY_UNSUPPORTED)
                    logger.warning("daily rollups unused: a day of %s does not start on a whole hour", self._timezone)
                    return DAILY_UNSUPPORTED
                await connection.execute(
                    self._fill,
                    {
                        "timezone": self._timezone,
                        "types": _ROLLUP_TYPES,
                        "day_start_s": start_us // 1_000_000,
                        "day_end_s": end_us // 1_000_000,
                    },
                )
                await connection.execute(
                    update(rollup_coverage)
                    .where(rollup_coverage.c.timezone == self._timezone)
                    .values(backfilled_before_s=end_us // 1_000_000)
                )
            # Rest as long as the day took: SQLite's ledger writer waits for the write lock by polling, and
            # would otherwise lose every race to the next day's transaction until the fill is done.
            await asyncio.sleep(max(_MIN_PAUSE_S, time.perf_counter() - started_s))

    async def _next_day(
        self, connection: AsyncConnection, hours: tuple[int, int] | None, done_before_s: int | None
    ) -> tuple[int, int] | None:
        """``[start_us, end_us)`` of the first local day not yet filled with hourly rows in ``hours``."""
        if hours is None:
            return None
        first_s, last_s = hours
        rollups = spend_rollups.c
        next_hour_s = await connection.scalar(
            select(func.min(rollups.hour_start_s)).where(
                rollups.entity_type == ROLLUP_RECORD_TYPE,
                rollups.entity_id == ROLLUP_RECORD_ID,
                rollups.hour_start_s >= max(first_s, done_before_s or first_s),
                rollups.hour_start_s <= last_s,
            )
        )
        if next_hour_s is None:
            return None
        return local_day_us(int(next_hour_s) * 1_000_000, self._tz)


async def _hour_range(connection: AsyncConnection) -> tuple[int, int] | None:
    """The first and last hour with records (every record has a whole-ledger row), or None for none."""
    rollups = spend_rollups.c
    whole_ledger = (rollups.entity_type == ROLLUP_RECORD_TYPE, rollups.entity_id == ROLLUP_RECORD_ID)
    first = await connection.scalar(select(func.min(rollups.hour_start_s)).where(*whole_ledger))
    last = await connection.scalar(select(func.max(rollups.hour_start_s)).where(*whole_ledger))
    return None if first is None or last is None else (int(first), int(last))


async def _set_state(connection: AsyncConnection, timezone: str, state: str) -> None:
    await connection.execute(
        update(rollup_coverage)
        .where(rollup_coverage.c.timezone == timezone)
        .values(state=state, updated_at_us=_now_us())
    )


def _now_us() -> int:
    return time.time_ns() // 1000
