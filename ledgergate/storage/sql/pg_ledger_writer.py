"""The PostgreSQL ledger writer: a whole batch (records, their charges, their hourly and daily rollup additions) in
ONE statement, so one round trip and one implicit transaction per group commit.

Through SQLAlchemy the same batch costs BEGIN, one statement per table, COMMIT, plus a pool checkout (and its
pre-ping) and SQLAlchemy's statement building: about 2 ms per batch at concurrency 1, most of a request's added
latency. Here the data travels as one array per column, ``unnest``ed by data-modifying CTEs; a single statement is
atomic by itself (all or nothing), and its plan is prepared once per connection (asyncpg's statement cache).

What is written (a ``LedgerBatch``, each request id once: ``ledger_rows.py``): each record (``ON CONFLICT DO
NOTHING``); then only for the records actually inserted (the ``RETURNING`` of that insert) their charges and their
sums added to ``spend_rollups`` and ``spend_daily_rollups``. A request id already in the ledger adds nothing.

Locks. Rollup rows are aggregated per key (one statement may touch a row only once) and upserted in one order:
the primary key's columns as in Python's ``sorted`` of the rollup keys (``COLLATE "C"``: code point order, what
``ledger_rows.summed_rollups`` sorts by), hourly rows completely before daily rows. So concurrent writers (other
instances, the daily backfill) take row locks in the same order and cannot deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import String, Table, Text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from ledgergate.db_failures import is_database_failure
from ledgergate.storage.sql.ledger_rows import CHARGE_COLUMNS, RECORD_COLUMNS, ROLLUP_ADD_COLUMNS, LedgerBatch
from ledgergate.storage.sql.tables import ROLLUP_SUMS, spend_charges, spend_records


def _array_types(table: Table, columns: Sequence[str]) -> tuple[str, ...]:
    """The array type each column travels as: text for the string columns, int8 for the integer ones."""
    return tuple("text" if isinstance(table.c[column].type, String | Text) else "int8" for column in columns)


_RECORD_TYPES = _array_types(spend_records, RECORD_COLUMNS)
_CHARGE_TYPES = _array_types(spend_charges, CHARGE_COLUMNS)
# (request_id, entity_type, entity_id, model, period start, *ROLLUP_SUMS): text, then int8 from the period start on
_ROLLUP_TYPES = tuple("text" if index < 4 else "int8" for index in range(len(ROLLUP_ADD_COLUMNS)))


def _params(start: int, types: Sequence[str]) -> str:
    return ", ".join(f"${start + index}::{kind}[]" for index, kind in enumerate(types))


def _upsert(table: str, period: str, first_param: int, after: str = "") -> str:
    """Add the rollup rows of the inserted records to ``table``: one row per key (GROUP BY), in lock order."""
    key = ("entity_type", "entity_id", "model", period)
    daily = table == "spend_daily_rollups"
    columns = ("timezone", *key) if daily else key
    picked = ("$1::text", *(f"a.{column}" for column in key)) if daily else tuple(f"a.{column}" for column in key)
    ordered = ", ".join(f'a.{column} COLLATE "C"' if column != period else f"a.{column}" for column in key)
    return f"""
    INSERT INTO {table} AS t ({", ".join(columns)}, {", ".join(ROLLUP_SUMS)})
    SELECT {", ".join(picked)}, {", ".join(f"sum(a.{name})::int8" for name in ROLLUP_SUMS)}
    FROM unnest({_params(first_param, _ROLLUP_TYPES)}) AS a(request_id, {", ".join(key)}, {", ".join(ROLLUP_SUMS)})
    JOIN inserted USING (request_id)
    {f"WHERE {after}" if after else ""}
    GROUP BY {", ".join(f"a.{column}" for column in key)}
    ORDER BY {ordered}
    ON CONFLICT ({"timezone, " if daily else ""}entity_type, entity_id, {period}, model)
    DO UPDATE SET {", ".join(f"{name} = t.{name} + excluded.{name}" for name in ROLLUP_SUMS)}
    RETURNING 1"""


_RECORDS_AT = 2  # $1 is the timezone of the daily rows
_CHARGES_AT = _RECORDS_AT + len(RECORD_COLUMNS)
_HOURLY_AT = _CHARGES_AT + len(_CHARGE_TYPES)
_DAILY_AT = _HOURLY_AT + len(_ROLLUP_TYPES)
_RECORD_LIST = ", ".join(RECORD_COLUMNS)
_CHARGE_LIST = ", ".join(CHARGE_COLUMNS)

# Data-modifying CTEs all run to completion, whether the final SELECT reads them or not. Each upsert reads
# ``inserted`` (the records' RETURNING): duplicates add nothing. The daily upsert's WHERE runs the hourly one to its
# end before reading any row of its own: hourly row locks always come before daily ones.
WRITE_BATCH = f"""
WITH inserted AS (
    INSERT INTO spend_records ({_RECORD_LIST})
    SELECT {_RECORD_LIST} FROM unnest({_params(_RECORDS_AT, _RECORD_TYPES)}) AS r({_RECORD_LIST})
    ORDER BY request_id COLLATE "C"
    ON CONFLICT DO NOTHING
    RETURNING request_id
), charged AS (
    INSERT INTO spend_charges ({_CHARGE_LIST})
    SELECT {", ".join(f"c.{column}" for column in CHARGE_COLUMNS)}
    FROM unnest({_params(_CHARGES_AT, _CHARGE_TYPES)}) AS c({_CHARGE_LIST})
    JOIN inserted USING (request_id)
    ORDER BY c.request_id COLLATE "C", c.entity_type COLLATE "C", c.entity_id COLLATE "C"
    ON CONFLICT DO NOTHING
), hourly AS ({_upsert("spend_rollups", "hour_start_s", _HOURLY_AT)}
), daily AS ({_upsert("spend_daily_rollups", "day_start_s", _DAILY_AT, "(SELECT count(*) FROM hourly) >= 0")}
)
SELECT request_id FROM inserted
"""


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Row tuples -> one list per column (what ``unnest`` takes), also when there are no rows."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


class PgLedgerWriter:
    """Writes ledger batches through one dedicated connection taken from the engine's pool (so the engine's connect
    arguments, e.g. ``search_path``, apply), held for the writer's lifetime: no checkout or pre-ping per batch."""

    def __init__(self, engine: AsyncEngine, statement_timeout_s: float = 30.0) -> None:
        self._engine = engine
        # A batch that hangs (a partitioned network) fails after this and is retried on a fresh connection.
        self._statement_timeout_s = statement_timeout_s
        self._proxied: Any = None  # the pool's connection fairy, checked out until close or failure
        self._lock = asyncio.Lock()  # one statement at a time on the connection (the group-commit loop is serial)

    async def close(self) -> None:
        async with self._lock:
            proxied, self._proxied = self._proxied, None
            if proxied is not None:
                await greenlet_spawn(proxied.close)  # back to the pool, which the engine's dispose then closes

    async def write(self, batch: LedgerBatch) -> set[str]:
        """Insert the batch's records not in the ledger yet and, for each one inserted, its charges and rollup
        additions, atomically in one statement; the request ids inserted."""
        args = [
            batch.timezone,
            *_columns(batch.records, len(RECORD_COLUMNS)),
            *_columns(batch.charges, len(CHARGE_COLUMNS)),
            *_columns(batch.hourly, len(ROLLUP_ADD_COLUMNS)),
            *_columns(batch.daily, len(ROLLUP_ADD_COLUMNS)),
        ]
        async with self._lock:
            connection = await self._connection()
            try:
                rows = await connection.fetch(WRITE_BATCH, *args, timeout=self._statement_timeout_s)
            except asyncpg.PostgresError as exc:
                # Refused by the server (nothing written): the connection is fine, unless the server is shutting
                # it down (57P01 admin shutdown, e.g. pg_terminate_backend) or lost it.
                if is_database_failure(exc) or connection.is_closed():
                    await self._invalidate()
                raise
            except BaseException:
                # Broken or interrupted mid-statement (its outcome is unknown to us): never reuse this connection.
                await self._invalidate()
                raise
        return {row[0] for row in rows}

    async def _connection(self) -> Any:
        if self._proxied is not None and self._proxied.driver_connection.is_closed():
            await self._invalidate()  # closed while idle (e.g. a PostgreSQL restart): nothing sent yet, reconnect
        if self._proxied is None:
            self._proxied = await self._engine.raw_connection()  # pre-pinged: a stale pooled connection is replaced
        return self._proxied.driver_connection

    async def _invalidate(self) -> None:
        proxied, self._proxied = self._proxied, None
        if proxied is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close; it is discarded anyway
                await greenlet_spawn(proxied.invalidate)
