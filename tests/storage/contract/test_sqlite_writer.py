"""The SQLite ledger writer commits small batches on the event loop's thread, and hands a batch to its writer
thread when another connection holds the database's write lock: the append waits for the lock without stalling
the event loop, and nothing is lost or written twice."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.ledger import SqlLedger
from tests.storage.contract.test_sql_ledger_contract import HOUR_S, KEY, _record


async def test_sqlite_append_waits_for_a_write_lock_held_elsewhere_without_blocking_the_event_loop(
    tmp_path: Path,
) -> None:
    """An admin write (another connection) mid-transaction when a record arrives: the record waits for the lock
    in the writer thread while the event loop keeps running, then commits once."""
    path = tmp_path / "ledger.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade_schema(engine)
    ledger = SqlLedger(engine)
    await ledger.start()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        assert await ledger.append(_record("before", 5, HOUR_S * 1_000_000))  # inline, lock free
        other.execute("BEGIN IMMEDIATE")  # the write lock, as a long admin transaction would hold it
        append = asyncio.create_task(ledger.append(_record("during", 7, HOUR_S * 1_000_000 + 1)))
        for _ in range(20):
            await asyncio.sleep(0.01)  # the loop runs on: the waiting batch is in the writer thread
        assert not append.done()
        other.execute("COMMIT")
        assert await append
        assert not await ledger.append(_record("during", 7, HOUR_S * 1_000_000 + 1))  # once, not twice
        assert await ledger.lifetime_spend(KEY) == 12
        (count,) = other.execute("SELECT COUNT(*) FROM spend_records").fetchone()
        assert count == 2
    finally:
        other.close()
        await ledger.close()
        await engine.dispose()
