"""The SQL ledger: spend records written by one group-commit writer, adjustments, and counter rebuild sums."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledgergate.domain.admission import CounterKey, CounterUnit
from ledgergate.domain.charging import EntityRef
from ledgergate.domain.ledger import Adjustment, SpendRecord
from ledgergate.domain.rate_limits import unit_of_window
from ledgergate.domain.windows import split_window_key
from ledgergate.storage.sql.daily_rollups import DailyBackfill, register_timezone
from ledgergate.storage.sql.durable_commits import DEFAULT_RETRY, DurableCommits, RetryPolicy
from ledgergate.storage.sql.ledger_rows import LedgerBatchWriter, ledger_batch
from ledgergate.storage.sql.ledger_spill import LedgerSpill
from ledgergate.storage.sql.pg_ledger_writer import PgLedgerWriter
from ledgergate.storage.sql.rollup_rows import LocalDays, hour_start_s
from ledgergate.storage.sql.sqlite_writer import SqliteBatchWriter
from ledgergate.storage.sql.tables import (
    DAILY_BACKFILLING,
    DAILY_UNSUPPORTED,
    ROLLUP_HOUR_S,
    spend_adjustments,
    spend_charges,
    spend_records,
    spend_rollups,
)

_MAX_BATCH = 1000


class SqlLedger:
    """Appends are batched: every record waiting when a transaction starts shares its commit (group commit).

    ``append`` returns only after the commit, so a response is never completed before its record is durable; with
    the database down, after the record is fsync'd to the local spill file (``durable_commits.py``).
    Besides the hourly rollups, it keeps daily ones in the local days of ``timezone`` (the gateway's), and fills
    their earlier days in the background after ``start`` (``daily_rollups.py``).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        timezone: str = "UTC",
        *,
        spill_directory: Path | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._engine = engine
        self._timezone = timezone
        self._days = LocalDays(ZoneInfo(timezone))
        self._keep_daily = False  # decided by start(): not for a timezone the rollups cannot serve
        self._backfill: asyncio.Task[str] | None = None
        self._started = False
        # One writer per dialect, each one transaction per batch; both take the same rows (``ledger_rows.py``).
        self._sqlite_writer: SqliteBatchWriter | None = None
        self._writer: LedgerBatchWriter
        if engine.dialect.name == "postgresql":
            self._writer = PgLedgerWriter(engine)  # the whole batch in one statement, one round trip
        elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self._writer = self._sqlite_writer = SqliteBatchWriter(engine.url.database)
        else:
            # The SQLite writer has its own connections: an in-memory database would be another, empty, one.
            raise ValueError(
                "the ledger needs a PostgreSQL database or a SQLite file, "
                f"not {engine.dialect.name} database {engine.url.database!r}"
            )
        spill = LedgerSpill(spill_directory, database_tag(engine)) if spill_directory is not None else None
        # Looked up at each call: tests and benchmarks wrap ``_write_batch`` on a built ledger.
        self._commits = DurableCommits(lambda records: self._write_batch(records), self._ping, spill, retry, _MAX_BATCH)

    async def start(self) -> None:
        if self._started:
            return
        # Registered before the first write, and filled only once this writer keeps daily rows: see the backfill.
        state = await register_timezone(self._engine, self._timezone)
        self._keep_daily = state != DAILY_UNSUPPORTED
        if self._sqlite_writer is not None:
            self._sqlite_writer.start()
        await self._commits.start()
        self._started = True
        if state == DAILY_BACKFILLING:
            backfill = DailyBackfill(self._engine, self._timezone)
            self._backfill = asyncio.create_task(backfill.run(), name="daily-rollup-backfill")

    @property
    def timezone(self) -> str:
        return self._timezone

    async def daily_rollups_filled(self) -> None:
        """Wait for this instance's backfill of the daily rollups, if one runs (tests, benchmarks)."""
        if self._backfill is not None:
            await asyncio.shield(self._backfill)

    async def close(self) -> None:
        if self._backfill is not None:
            # Cancelling rolls back the day being filled; the next start fills it again.
            self._backfill.cancel()
            await asyncio.gather(self._backfill, return_exceptions=True)
            self._backfill = None
        await self._commits.close()
        self._started = False
        await self._writer.close()

    async def append(self, record: SpendRecord) -> bool:
        """True if the record was written now (or kept in the spill file, the database down), False if its request
        id was already in the ledger."""
        return await self._commits.append(record)

    @property
    def pending_count(self) -> int:
        """Records acknowledged or waiting but not in the database yet (memory and spill files)."""
        return self._commits.pending_count

    async def _write_batch(self, records: list[SpendRecord]) -> set[str]:
        """Insert new records with their charges and rollup additions; the request ids not there before.

        Only the record actually written brings its charges and rollups: a duplicate request id (already in the
        ledger, or earlier in this batch) adds nothing, even if it names other targets.
        """
        batch = ledger_batch(records, hour_start_s, self._day_start_s, self._timezone)
        return await self._writer.write(batch)

    async def _ping(self) -> None:
        async with self._engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    def _day_start_s(self, charged_at_us: int) -> int | None:
        """The local day a charge instant adds to in the daily rollups (None: daily rows are not kept)."""
        return self._days.day_start_s(charged_at_us) if self._keep_daily else None

    async def add_adjustment(self, adjustment: Adjustment) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                spend_adjustments.insert(),
                {
                    "adjustment_id": adjustment.adjustment_id,
                    "entity_type": adjustment.entity.type.value,
                    "entity_id": adjustment.entity.id,
                    "window": adjustment.window,
                    "period_start_s": adjustment.period_start_s,
                    "previous_nanos": adjustment.previous_nanos,
                    "new_nanos": adjustment.new_nanos,
                    "delta_nanos": adjustment.delta_nanos,
                    "actor": adjustment.actor,
                    "reason": adjustment.reason,
                    "created_at_us": adjustment.created_at_us,
                },
            )

    async def window_sums(self, keys: Sequence[CounterKey], period_ends_s: Sequence[int]) -> list[int]:
        """Each key's spend in ``[period_start_s, end_s)`` plus its adjustments: whole hours from the rollups,
        partial edge hours (periods of a :30/:45 timezone, or shorter than an hour) from the raw charges."""
        sums: list[int] = []
        async with self._engine.connect() as connection:
            for key, end_s in zip(keys, period_ends_s, strict=True):
                unit = unit_of_window(key.window)
                if unit is not CounterUnit.COST_NANOS:  # a rate limit's counter
                    sums.append(await _rate_sum(connection, key, end_s, unit))
                    continue
                _, model = split_window_key(key.window)
                parts = _cost_queries(key.entity_type, key.entity_id, model, key.period_start_s, end_s)
                adjusted = select(func.coalesce(func.sum(spend_adjustments.c.delta_nanos), 0)).where(
                    spend_adjustments.c.entity_type == key.entity_type,
                    spend_adjustments.c.entity_id == key.entity_id,
                    spend_adjustments.c.window == key.window,
                    spend_adjustments.c.period_start_s == key.period_start_s,
                )
                parts.append(adjusted)
                row = (await connection.execute(select(*(part.scalar_subquery() for part in parts)))).one()
                sums.append(sum(int(value or 0) for value in row))
        return sums

    async def lifetime_spend(self, entity: EntityRef) -> int:
        async with self._engine.connect() as connection:
            total = await connection.scalar(
                select(func.coalesce(func.sum(spend_rollups.c.cost_nanos), 0)).where(
                    spend_rollups.c.entity_type == entity.type.value,
                    spend_rollups.c.entity_id == entity.id,
                )
            )
        return int(total or 0)


def database_tag(engine: AsyncEngine) -> str:
    """The database a spill directory belongs to: its URL without the password (never written to disk)."""
    return engine.url.render_as_string(hide_password=True)


def whole_hours(start_s: int, end_s: int) -> tuple[int, int]:
    """``[first, last)``: the whole rollup hours inside ``[start_s, end_s)`` (empty when ``first >= last``)."""
    return -(-start_s // ROLLUP_HOUR_S) * ROLLUP_HOUR_S, end_s // ROLLUP_HOUR_S * ROLLUP_HOUR_S


def _cost_queries(entity_type: str, entity_id: str, model: str | None, start_s: int, end_s: int) -> list[Select[Any]]:
    """Sums that add up to the raw sum over ``[start_s, end_s)``: the whole hours from the rollups, the partial
    edge hours from the charges (each edge its own index range), so the cost is bounded by the period's hours
    rather than its records."""
    first_s, last_s = whole_hours(start_s, end_s)
    if first_s >= last_s:
        return [_raw_cost(entity_type, entity_id, model, start_s, end_s)]
    rollups = spend_rollups.c
    rolled = select(func.coalesce(func.sum(rollups.cost_nanos), 0)).where(
        rollups.entity_type == entity_type,
        rollups.entity_id == entity_id,
        rollups.hour_start_s >= first_s,
        rollups.hour_start_s < last_s,
    )
    if model is not None:
        rolled = rolled.where(rollups.model == model)
    edges = [(start_s, first_s), (last_s, end_s)]
    return [rolled] + [_raw_cost(entity_type, entity_id, model, low, high) for low, high in edges if low < high]


def _raw_cost(entity_type: str, entity_id: str, model: str | None, start_s: int, end_s: int) -> Select[Any]:
    charges = spend_charges.c
    raw = select(func.coalesce(func.sum(charges.cost_nanos), 0)).where(
        charges.entity_type == entity_type,
        charges.entity_id == entity_id,
        charges.charged_at_us >= start_s * 1_000_000,
        charges.charged_at_us < end_s * 1_000_000,
    )
    if model is not None:  # a model window counts only the charges of requests for its model
        raw = raw.join_from(spend_charges, spend_records, spend_records.c.request_id == charges.request_id).where(
            spend_records.c.model == model
        )
    return raw


async def _rate_sum(connection: AsyncConnection, key: CounterKey, end_s: int, unit: CounterUnit) -> int:
    """Requests charged to the entity in the period, or their tokens; requests in flight leave no record (0)."""
    if unit is CounterUnit.PARALLEL:
        return 0
    measure: Any = func.count()
    if unit is CounterUnit.TOKENS:
        measure = func.coalesce(func.sum(spend_records.c.prompt_tokens + spend_records.c.completion_tokens), 0)
    query = select(measure).select_from(spend_charges)
    if unit is CounterUnit.TOKENS:
        query = query.join(spend_records, spend_records.c.request_id == spend_charges.c.request_id)
    query = query.where(
        spend_charges.c.entity_type == key.entity_type,
        spend_charges.c.entity_id == key.entity_id,
        spend_charges.c.charged_at_us >= key.period_start_s * 1_000_000,
        spend_charges.c.charged_at_us < end_s * 1_000_000,
    )
    return int(await connection.scalar(query) or 0)
