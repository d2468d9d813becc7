"""The SQLite ledger writer: one thread with its own connection, one transaction per batch.

Going through SQLAlchemy + aiosqlite costs several thread round trips per statement; here a whole batch (every
record queued while the previous commit ran) is one hop to the thread and one commit. SQLite allows one writer
at a time anyway, so a single writer thread loses nothing.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

_RECORD_COLUMNS = (
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
_INSERT_RECORD = (
    f"INSERT INTO spend_records ({', '.join(_RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _RECORD_COLUMNS)}) ON CONFLICT DO NOTHING RETURNING request_id"
)
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
# (entity_type, entity_id, model, hour_start_s) -> [cost_nanos, requests, prompt_tokens, completion_tokens]
RollupKey = tuple[str, str, str, int]
RollupAdds = dict[RollupKey, list[int]]

_Job = tuple[
    Sequence[dict[str, Any]],
    Sequence[Sequence[ChargeRow]],
    Sequence[RollupAdds],
    asyncio.Future[set[str]],
    asyncio.AbstractEventLoop,
]


class SqliteBatchWriter:
    def __init__(self, path: str) -> None:
        self._path = path
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger-sqlite-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    async def write(
        self,
        records: Sequence[dict[str, Any]],
        charges: Sequence[Sequence[ChargeRow]],
        rollups: Sequence[RollupAdds],
    ) -> set[str]:
        """Insert records, and the charges and rollup additions of each one written (``charges[i]`` and
        ``rollups[i]`` belong to ``records[i]``), in one transaction; the request ids inserted."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[set[str]] = loop.create_future()
        self._jobs.put((records, charges, rollups, future, loop))
        return await future

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=30000")
            while (job := self._jobs.get()) is not None:
                records, charges, rollups, future, loop = job
                try:
                    inserted = self._write(connection, records, charges, rollups)
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
        rollups: Sequence[RollupAdds],
    ) -> set[str]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            inserted: set[str] = set()
            new_charges: list[ChargeRow] = []
            added: RollupAdds = {}
            for record, record_charges, record_rollups in zip(records, charges, rollups, strict=True):
                row = connection.execute(_INSERT_RECORD, [record[column] for column in _RECORD_COLUMNS]).fetchone()
                # Only a record written now brings charges and rollups: a duplicate adds nothing, whatever it names.
                if row is not None:
                    inserted.add(row[0])
                    new_charges.extend(record_charges)
                    merge_rollups(added, record_rollups)
            connection.executemany(_INSERT_CHARGE, new_charges)
            connection.executemany(_ADD_ROLLUP, [(*key, *sums) for key, sums in sorted(added.items())])
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return inserted


def merge_rollups(into: RollupAdds, adds: RollupAdds) -> None:
    for key, sums in adds.items():
        total = into.setdefault(key, [0, 0, 0, 0])
        for index, value in enumerate(sums):
            total[index] += value


def _succeed(future: asyncio.Future[set[str]], inserted: set[str]) -> None:
    if not future.done():
        future.set_result(inserted)


def _fail(future: asyncio.Future[set[str]], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
