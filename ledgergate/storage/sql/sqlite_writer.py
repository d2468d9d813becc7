"""The SQLite ledger writer: one thread with its own connection, one transaction per batch.

Going through SQLAlchemy + aiosqlite costs several thread round trips per statement; here a whole batch (every
record queued while the previous commit ran) is one hop to the thread and one commit. SQLite allows one writer
at a time anyway, so a single writer thread loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import queue
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from ledgergate.storage.sql.rollup_rows import RollupAdds, RollupKey, merge_rollups

__all__ = ["CHARGE_COLUMNS", "ChargeRow", "RollupAdds", "RollupKey", "SqliteBatchWriter", "merge_rollups"]

RECORD_COLUMNS = (
    "request_id",
    "key_id",
    "user_id",
    "team_id",
    "organization_id",
    "customer_id",
    "tags",
    "model",
    "deployment_id",
    "route",
    "prompt_tokens",
    "completion_tokens",
    "cost_nanos",
    "status",
    "charged_at_us",
    "ended_at_us",
)
# Plain INSERT: the batch's ids already in the ledger are read first under the write lock (BEGIN IMMEDIATE), so
# a conflict here would be a bug to surface, not a duplicate to skip silently.
_INSERT_RECORD = (
    f"INSERT INTO spend_records ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"
)
_record_values = operator.itemgetter(*RECORD_COLUMNS)
INLINE_MAX_RECORDS = 4  # batches up to this size are committed on the event loop's thread
CHARGE_COLUMNS = ("request_id", "entity_type", "entity_id", "cost_nanos", "charged_at_us")
ChargeRow = tuple[str, str, str, int, int]
_INSERT_CHARGE = (
    f"INSERT INTO spend_charges ({', '.join(CHARGE_COLUMNS)}) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_ADD_ROLLUP = (
    "INSERT INTO spend_rollups (entity_type, entity_id, model, hour_start_s, cost_nanos, requests, prompt_tokens, "
    "completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (entity_type, entity_id, hour_start_s, model) DO UPDATE SET "
    "cost_nanos = spend_rollups.cost_nanos + excluded.cost_nanos, "
    "requests = spend_rollups.requests + excluded.requests, "
    "prompt_tokens = spend_rollups.prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = spend_rollups.completion_tokens + excluded.completion_tokens"
)
_ADD_DAILY = (
    "INSERT INTO spend_daily_rollups (timezone, entity_type, entity_id, model, day_start_s, cost_nanos, requests, "
    "prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (timezone, entity_type, entity_id, day_start_s, model) DO UPDATE SET "
    "cost_nanos = spend_daily_rollups.cost_nanos + excluded.cost_nanos, "
    "requests = spend_daily_rollups.requests + excluded.requests, "
    "prompt_tokens = spend_daily_rollups.prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = spend_daily_rollups.completion_tokens + excluded.completion_tokens"
)

_Job = tuple[
    Sequence[dict[str, Any]],
    Sequence[Sequence[ChargeRow]],
    Sequence[RollupAdds],
    Sequence[RollupAdds],
    str,
    asyncio.Future[set[str]],
    asyncio.AbstractEventLoop,
]


class SqliteBatchWriter:
    def __init__(self, path: str) -> None:
        self._path = path
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._inline: sqlite3.Connection | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger-sqlite-writer", daemon=True)
            self._thread.start()
            # Small batches are written on the event loop's thread: a hand-off to the writer thread and back costs
            # more CPU than the commit itself. Busy timeout 0: if another connection holds the write lock, the
            # batch goes to the thread, which may wait for it without stalling the event loop.
            self._inline = _connect(self._path, busy_timeout_ms=0)

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
        if self._inline is not None:
            self._inline.close()
            self._inline = None

    async def write(
        self,
        records: Sequence[dict[str, Any]],
        charges: Sequence[Sequence[ChargeRow]],
        hourly: Sequence[RollupAdds],
        daily: Sequence[RollupAdds],
        timezone: str,
    ) -> set[str]:
        """Insert records, and the charges, hourly and daily rollup additions of each one written (``charges[i]``,
        ``hourly[i]`` and ``daily[i]`` belong to ``records[i]``; the daily ones are local days of ``timezone``)
        in one transaction; the request ids inserted."""
        if self._inline is not None and len(records) <= INLINE_MAX_RECORDS:
            try:
                return self._write(self._inline, records, charges, hourly, daily, timezone)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                # BEGIN IMMEDIATE found the write lock taken (nothing was written): the thread waits for it.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[set[str]] = loop.create_future()
        self._jobs.put((records, charges, hourly, daily, timezone, future, loop))
        return await future

    def _run(self) -> None:
        connection = _connect(self._path, busy_timeout_ms=30_000)
        try:
            while (job := self._jobs.get()) is not None:
                records, charges, hourly, daily, timezone, future, loop = job
                try:
                    inserted = self._write(connection, records, charges, hourly, daily, timezone)
                except Exception as exc:
                    loop.call_soon_threadsafe(_fail, future, exc)
                else:
                    loop.call_soon_threadsafe(_succeed, future, inserted)
        finally:
            connection.close()

    @staticmethod
    def _write(
        connection: sqlite3.Connection,
        records: Sequence[dict[str, Any]],
        charges: Sequence[Sequence[ChargeRow]],
        hourly: Sequence[RollupAdds],
        daily: Sequence[RollupAdds],
        timezone: str,
    ) -> set[str]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # One statement for the ids already in the ledger, one for the new records: no statement per record.
            ids = list({record["request_id"]: None for record in records})
            placeholders = ", ".join("?" * len(ids))
            present = connection.execute(
                f"SELECT request_id FROM spend_records WHERE request_id IN ({placeholders})", ids
            ).fetchall()
            seen: set[str] = {row[0] for row in present}
            inserted: set[str] = set()
            new_records: list[tuple[Any, ...]] = []
            new_charges: list[ChargeRow] = []
            hours: RollupAdds = {}
            days: RollupAdds = {}
            for record, record_charges, record_hourly, record_daily in zip(
                records, charges, hourly, daily, strict=True
            ):
                request_id = record["request_id"]
                # Only a record written now brings charges and rollups: a duplicate adds nothing, whatever it names.
                if request_id in seen:
                    continue
                seen.add(request_id)
                inserted.add(request_id)
                new_records.append(_record_values(record))
                new_charges.extend(record_charges)
                merge_rollups(hours, record_hourly)
                merge_rollups(days, record_daily)
            connection.executemany(_INSERT_RECORD, new_records)
            connection.executemany(_INSERT_CHARGE, new_charges)
            connection.executemany(_ADD_ROLLUP, [(*key, *sums) for key, sums in sorted(hours.items())])
            connection.executemany(_ADD_DAILY, [(timezone, *key, *sums) for key, sums in sorted(days.items())])
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:  # an I/O error may have ended it already: keep the original error
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            raise
        return inserted


def _connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return connection


def _succeed(future: asyncio.Future[set[str]], inserted: set[str]) -> None:
    if not future.done():
        future.set_result(inserted)


def _fail(future: asyncio.Future[set[str]], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
