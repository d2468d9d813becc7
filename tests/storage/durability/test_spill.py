"""The local spill file: what survives a crash, what is refused, and replay at start-up (issue 12)."""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.ledger import SqlLedger, database_tag
from ledgergate.storage.sql.ledger_spill import LedgerSpill, SpillDirectoryError, record_from_json, record_to_json
from ledgergate.storage.sql.tables import spend_records
from tests.storage.contract.test_sql_ledger_contract import HOUR_S, _record


async def _sqlite_ledger(tmp_path: Path, spill_dir: Path) -> SqlLedger:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lg.db'}")
    await upgrade_schema(engine)
    ledger = SqlLedger(engine, spill_directory=spill_dir)
    await ledger.start()
    return ledger


async def _rows(ledger: SqlLedger) -> int:
    async with ledger._engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(spend_records)) or 0)


def test_a_spilled_record_round_trips_exactly() -> None:
    record = _record("r1", 123, HOUR_S * 1_000_000)
    assert record_from_json(record_to_json(record)) == record


async def test_records_spilled_before_a_crash_are_written_at_the_next_start_once(tmp_path: Path) -> None:
    """The database was down, records were spilled (fsync'd) and acknowledged, then the process died: the next
    start-up writes them; appending one of them again is a duplicate (request id rule), nothing is counted twice."""
    spill_dir = tmp_path / "spill"
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lg.db'}")
    spill = LedgerSpill(spill_dir, database_tag(engine))
    await engine.dispose()
    records = [_record(f"r{i}", i, HOUR_S * 1_000_000 + i) for i in range(5)]
    spill.append(records[:3])
    spill.append(records[3:])
    spill.close()  # the process is gone: its lock is released, its file stays
    ledger = await _sqlite_ledger(tmp_path, spill_dir)
    try:
        assert ledger.pending_count == 5  # readiness tells them apart from an idle gateway
        for _ in range(100):
            if ledger.pending_count == 0:
                break
            await asyncio.sleep(0.05)
        assert ledger.pending_count == 0
        assert await _rows(ledger) == 5
        assert list(spill_dir.glob("ledger-spill-*.jsonl")) == []
        assert await ledger.append(records[0]) is False
        assert await _rows(ledger) == 5
    finally:
        await ledger.close()
        await ledger._engine.dispose()


def test_a_record_torn_by_a_crash_is_dropped_and_cannot_corrupt_the_next_line(tmp_path: Path) -> None:
    """A crash mid-append leaves a partial last line, never acknowledged: adopting the file cuts it off."""
    spill = LedgerSpill(tmp_path, "db")
    good = record_to_json(_record("r1", 1, HOUR_S * 1_000_000))
    (tmp_path / "ledger-spill-dead.jsonl").write_bytes(good + b"\n" + good[:20])
    backlogs = spill.adopt()
    assert [record.request_id for backlog in backlogs for record in spill.read_batch(backlog, 10)] == ["r1"]
    assert (tmp_path / "ledger-spill-dead.jsonl").read_bytes() == good + b"\n"
    for backlog in backlogs:
        spill.give_back(backlog)


def test_an_unreadable_spill_line_is_kept_in_rejected_not_lost(tmp_path: Path) -> None:
    spill = LedgerSpill(tmp_path, "db")
    good = record_to_json(_record("r1", 1, HOUR_S * 1_000_000))
    (tmp_path / "ledger-spill-dead.jsonl").write_bytes(b'{"v": 1, "garbage": true}\n' + good + b"\n")
    backlogs = spill.adopt()
    assert [record.request_id for backlog in backlogs for record in spill.read_batch(backlog, 10)] == ["r1"]
    assert (tmp_path / "ledger-spill-dead.jsonl.rejected").read_bytes() == b'{"v": 1, "garbage": true}\n'
    for backlog in backlogs:
        spill.give_back(backlog)


def test_a_live_process_spill_file_is_not_adopted(tmp_path: Path) -> None:
    """Workers share the directory: a file still locked by its (live) owner is left to it."""
    path = tmp_path / "ledger-spill-live.jsonl"
    path.write_bytes(record_to_json(_record("r1", 1, HOUR_S * 1_000_000)) + b"\n")
    with path.open("rb") as owner:
        fcntl.flock(owner.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert LedgerSpill(tmp_path, "db").adopt() == []


async def test_a_spill_directory_of_another_database_is_refused_at_start(tmp_path: Path) -> None:
    """Two gateways on different databases sharing a spill directory would replay records into the wrong ledger."""
    spill_dir = tmp_path / "spill"
    other = LedgerSpill(spill_dir, "postgresql+asyncpg://other@db/other")
    other.append([_record("r1", 1, HOUR_S * 1_000_000)])
    other.close()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lg.db'}")
    await upgrade_schema(engine)
    ledger = SqlLedger(engine, spill_directory=spill_dir)
    try:
        with pytest.raises(SpillDirectoryError, match="belongs to another database"):
            await ledger.start()
    finally:
        await ledger.close()
        await engine.dispose()


def test_a_long_outage_file_is_replayed_in_batches_not_read_whole(tmp_path: Path) -> None:
    """A file of many records is read ``size`` records at a time: replay memory stays bounded."""
    spill = LedgerSpill(tmp_path, "db")
    spill.append([_record(f"r{i}", i, HOUR_S * 1_000_000 + i) for i in range(25)])
    spill.release_own()
    (backlog,) = spill.adopt()
    sizes = []
    while batch := spill.read_batch(backlog, 10):
        sizes.append(len(batch))
    assert sizes == [10, 10, 5]
    assert spill.pending_count == 25
    spill.done(backlog)
    assert spill.pending_count == 0
    assert list(tmp_path.glob("ledger-spill-*.jsonl")) == []


async def test_an_unusable_spill_directory_stops_start_up_not_a_later_outage(tmp_path: Path) -> None:
    """Found at start-up: a spill path under a regular file could never keep a record during an outage."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lg.db'}")
    await upgrade_schema(engine)
    ledger = SqlLedger(engine, spill_directory=blocker / "spill")
    try:
        with pytest.raises(SpillDirectoryError, match="cannot be created or written"):
            await ledger.start()
    finally:
        await ledger.close()
        await engine.dispose()


def test_an_altered_spill_line_with_a_negative_cost_is_rejected_not_replayed(tmp_path: Path) -> None:
    """Someone editing the spill file must not lower a budget's spend through a replay."""
    spill = LedgerSpill(tmp_path, "db")
    forged = record_to_json(dataclasses.replace(_record("r1", 1, HOUR_S * 1_000_000), cost_nanos=-5_000_000_000))
    (tmp_path / "ledger-spill-dead.jsonl").write_bytes(forged + b"\n")
    (backlog,) = spill.adopt()
    assert spill.read_batch(backlog, 10) == []
    assert (tmp_path / "ledger-spill-dead.jsonl.rejected").read_bytes() == forged + b"\n"
    spill.give_back(backlog)
