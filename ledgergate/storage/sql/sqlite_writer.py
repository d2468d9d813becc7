"""The SQLite ledger writer: one thread with its own connection, one transaction per batch.

Going through SQLAlchemy + aiosqlite costs several thread round trips per statement; here a whole batch (every
record queued while the previous commit ran) is one hop to the thread and one commit. SQLite allows one writer
at a time anyway, so a single writer thread loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading

from ledgergate.storage.sql.ledger_rows import CHARGE_COLUMNS, RECORD_COLUMNS, LedgerBatch, summed_rollups
from ledgergate.storage.sql.tables import ROLLUP_SUMS

__all__ = ["SqliteBatchWriter"]

# Plain INSERT: the batch's ids already in the ledger are read first under the write lock (BEGIN IMMEDIATE), so
# a conflict here would be a bug to surface, not a duplicate to skip silently.
_INSERT_RECORD = (
    f"INSERT INTO spend_records ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"
)
_INSERT_CHARGE = (
    f"INSERT INTO spend_charges ({', '.join(CHARGE_COLUMNS)}) VALUES ({', '.join('?' for _ in CHARGE_COLUMNS)}) "
    "ON CONFLICT DO NOTHING"
)


def _add_rollups(table: str, key: tuple[str, ...]) -> str:
    """Upsert-add one row per rollup key: the sums of the key's row grow by the batch's."""
    columns = (*key, *ROLLUP_SUMS)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(column for column in key if column != 'model')}, model) DO UPDATE SET "
        + ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in ROLLUP_SUMS)
    )


_ADD_ROLLUP = _add_rollups("spend_rollups", ("entity_type", "entity_id", "model", "hour_start_s"))
_ADD_DAILY = _add_rollups("spend_daily_rollups", ("timezone", "entity_type", "entity_id", "model", "day_start_s"))

INLINE_MAX_RECORDS = 4  # batches up to this size are committed on the event loop's thread
_Job = tuple[LedgerBatch, asyncio.Future[set[str]], asyncio.AbstractEventLoop]


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

    async def close(self) -> None:
        await asyncio.to_thread(self.stop)

    async def write(self, batch: LedgerBatch) -> set[str]:
        """Insert the batch's records not in the ledger yet, with their charges and rollup additions, in one
        transaction; their request ids."""
        if self._inline is not None and len(batch.records) <= INLINE_MAX_RECORDS:
            try:
                return self._write(self._inline, batch)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                # BEGIN IMMEDIATE found the write lock taken (nothing was written): the thread waits for it.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[set[str]] = loop.create_future()
        self._jobs.put((batch, future, loop))
        return await future

    def _run(self) -> None:
        connection = _connect(self._path, busy_timeout_ms=30_000)
        try:
            while (job := self._jobs.get()) is not None:
                batch, future, loop = job
                try:
                    inserted = self._write(connection, batch)
                except Exception as exc:
                    loop.call_soon_threadsafe(_fail, future, exc)
                else:
                    loop.call_soon_threadsafe(_succeed, future, inserted)
        finally:
            connection.close()

    @staticmethod
    def _write(connection: sqlite3.Connection, batch: LedgerBatch) -> set[str]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # One statement for the ids already in the ledger, one per table for the rest: no statement per record.
            ids = batch.request_ids
            present = connection.execute(
                f"SELECT request_id FROM spend_records WHERE request_id IN ({', '.join('?' * len(ids))})", ids
            ).fetchall()
            inserted = set(ids).difference(row[0] for row in present)
            # Only a record written now brings charges and rollups: one already there adds nothing.
            connection.executemany(_INSERT_RECORD, [row for row in batch.records if row[0] in inserted])
            connection.executemany(_INSERT_CHARGE, [row for row in batch.charges if row[0] in inserted])
            connection.executemany(_ADD_ROLLUP, summed_rollups(batch.hourly, inserted))
            connection.executemany(
                _ADD_DAILY, [(batch.timezone, *row) for row in summed_rollups(batch.daily, inserted)]
            )
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
