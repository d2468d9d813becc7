"""The SQL ledger contract (``Ledger`` port), on SQLite and on PostgreSQL, and the migrations on both."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from ledgergate.domain.admission import CounterKey
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import Adjustment, SpendRecord
from ledgergate.storage.sql.engine import MIGRATIONS_DIR, upgrade_schema
from ledgergate.storage.sql.ledger import SqlLedger
from ledgergate.storage.sql.tables import spend_charges, spend_records
from tests.builders import spend_record
from tests.storage.contract.services import (
    POSTGRES_URL,
    SqlUnderTest,
    create_pg_schema,
    drop_pg_schema,
    pg_engine,
)
from tests.support.timing import scaled


def _migration_head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


MIGRATION_HEAD = _migration_head()

HOUR_S = 1_767_225_600  # 2026-01-01T00:00Z
KEY = EntityRef(EntityType.KEY, "k1")
TEAM = EntityRef(EntityType.TEAM, "t1")


def _record(request_id: str, cost_nanos: int, at_us: int, targets: tuple[EntityRef, ...] = (KEY, TEAM)) -> SpendRecord:
    return spend_record(
        request_id,
        cost_nanos=cost_nanos,
        charged_at_us=at_us,
        targets=targets,
        prompt_tokens=3,
        completion_tokens=4,
        team_id=TEAM.id if TEAM in targets else None,
        tags=("a", "b"),
    )


def _adjustment(adjustment_id: str, entity: EntityRef, window: str, start_s: int, delta: int) -> Adjustment:
    return Adjustment(adjustment_id, entity, window, start_s, 10_000, 10_000 + delta, "admin", "test", 0)


async def _count(sql_db: SqlUnderTest, table: Any) -> int:
    async with sql_db.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def test_sql_ledger_append_is_idempotent_per_request_id(sql_db: SqlUnderTest, sql_ledger: SqlLedger) -> None:
    """A request id is recorded at most once, whether repeated later, in one batch, or by two instances; exactly
    one append reports it written (the charger settles counters only for that one)."""
    assert await sql_ledger.append(_record("r1", 100, HOUR_S * 1_000_000)) is True
    assert await sql_ledger.append(_record("r1", 999, HOUR_S * 1_000_000)) is False
    await asyncio.gather(*(sql_ledger.append(_record("r2", 50, HOUR_S * 1_000_000)) for _ in range(5)))
    other_engine = sql_db.engine_factory()
    other = SqlLedger(other_engine)
    await other.start()
    try:
        two_instances = await asyncio.gather(
            sql_ledger.append(_record("r3", 7, HOUR_S * 1_000_000)), other.append(_record("r3", 7, HOUR_S * 1_000_000))
        )
        assert sorted(two_instances) == [False, True]
    finally:
        await other.close()
        await other_engine.dispose()
    assert await _count(sql_db, spend_records) == 3
    assert await _count(sql_db, spend_charges) == 6
    assert await sql_ledger.lifetime_spend(KEY) == 157


async def test_sql_ledger_duplicates_in_one_batch_report_one_write(sql_ledger: SqlLedger) -> None:
    """Concurrent appends of one request id that share a group commit: exactly one is reported written, so the
    charger settles the counters once and releases the other holds."""
    same_batch = await asyncio.gather(*(sql_ledger.append(_record("r2", 50, HOUR_S * 1_000_000)) for _ in range(5)))
    assert sorted(same_batch) == [False] * 4 + [True]


async def test_sql_ledger_window_sums_count_the_period_and_its_adjustments(sql_ledger: SqlLedger) -> None:
    """A counter's ledger value: charges with start <= charged_at < end, plus adjustments of that exact window
    and period; keys answered in order."""
    start_us, end_us = HOUR_S * 1_000_000, (HOUR_S + 3600) * 1_000_000
    await asyncio.gather(
        sql_ledger.append(_record("before", 1, start_us - 1)),
        sql_ledger.append(_record("first", 10, start_us)),
        sql_ledger.append(_record("last", 100, end_us - 1)),
        sql_ledger.append(_record("after", 1_000, end_us)),
        sql_ledger.append(_record("key-only", 10_000, start_us + 5, targets=(KEY,))),
    )
    await sql_ledger.add_adjustment(_adjustment("adj1", KEY, "1h", HOUR_S, -30))
    await sql_ledger.add_adjustment(_adjustment("adj-other-window", KEY, "1d", HOUR_S, -5))
    await sql_ledger.add_adjustment(_adjustment("adj-other-period", KEY, "1h", HOUR_S + 3600, -7))
    keys = [
        CounterKey("team", "t1", "1h", HOUR_S),
        CounterKey("key", "k1", "1h", HOUR_S),
        CounterKey("key", "nobody", "1h", HOUR_S),
        CounterKey("key", "k1", "1h", HOUR_S + 3600),
    ]
    ends = [HOUR_S + 3600] * 3 + [HOUR_S + 7200]
    assert await sql_ledger.window_sums(keys, ends) == [110, 10_110 - 30, 0, 1_000 - 7]


async def test_sql_ledger_lifetime_spend_sums_every_charge_of_the_entity(sql_ledger: SqlLedger) -> None:
    """Lifetime spend is every charge of that entity (any period), never another type's entity with the same id."""
    same_id_user = EntityRef(EntityType.USER, "k1")
    await sql_ledger.append(_record("r1", 2**40, HOUR_S * 1_000_000))
    await sql_ledger.append(_record("r2", 5, (HOUR_S + 86_400 * 40) * 1_000_000, targets=(KEY,)))
    await sql_ledger.append(_record("r3", 9, HOUR_S * 1_000_000, targets=(same_id_user,)))
    assert await sql_ledger.lifetime_spend(KEY) == 2**40 + 5
    assert await sql_ledger.lifetime_spend(TEAM) == 2**40
    assert await sql_ledger.lifetime_spend(same_id_user) == 9
    assert await sql_ledger.lifetime_spend(EntityRef(EntityType.TAG, "none")) == 0


async def test_sql_ledger_group_commit_of_500_concurrent_appends(sql_db: SqlUnderTest, sql_ledger: SqlLedger) -> None:
    """500 concurrent appends all return committed, sharing a handful of transactions (group commit): each batch
    is one transaction on every writer (SQLite's thread, PostgreSQL's single statement)."""
    batches = 0
    write_batch = sql_ledger._write_batch

    async def counting(records: list[SpendRecord]) -> set[str]:
        nonlocal batches
        batches += 1
        return await write_batch(records)

    sql_ledger._write_batch = counting  # type: ignore[method-assign]
    written = await asyncio.gather(
        *(sql_ledger.append(_record(f"r{i}", i, HOUR_S * 1_000_000 + i)) for i in range(500))
    )
    assert all(written)
    assert await _count(sql_db, spend_records) == 500
    assert await sql_ledger.lifetime_spend(KEY) == sum(range(500))
    assert 1 <= batches <= 10


async def test_sql_schema_upgrade_is_idempotent(sql_db: SqlUnderTest) -> None:
    """Running the migrations again (every instance does at start-up) changes nothing."""
    await upgrade_schema(sql_db.engine)
    async with sql_db.engine.connect() as connection:
        assert (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all() == [
            MIGRATION_HEAD
        ]


_UPGRADE_SCRIPT = """
import asyncio, sys
from sqlalchemy.ext.asyncio import create_async_engine
from ledgergate.storage.sql.engine import upgrade_schema

async def main() -> None:
    engine = create_async_engine(sys.argv[1], connect_args={"server_settings": {"search_path": sys.argv[2]}})
    try:
        await upgrade_schema(engine)
    finally:
        await engine.dispose()

asyncio.run(main())
"""


@pytest.mark.slow
async def test_sql_schema_concurrent_upgrades_on_postgresql() -> None:
    """Instances starting together on an empty PostgreSQL database all migrate it without racing on CREATE."""
    schema = await create_pg_schema()
    try:
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", _UPGRADE_SCRIPT, POSTGRES_URL, schema, stderr=asyncio.subprocess.PIPE
            )
            for _ in range(3)
        ]
        results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), timeout=scaled(60.0))
        for process, (_, stderr) in zip(processes, results, strict=True):
            assert process.returncode == 0, stderr.decode()[-2000:]
        engine = pg_engine(schema)
        try:
            async with engine.connect() as connection:
                versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars()
                assert versions.all() == [MIGRATION_HEAD]
        finally:
            await engine.dispose()
    finally:
        await drop_pg_schema(schema)


async def test_sql_ledger_one_failing_record_does_not_fail_its_batch(sql_db: SqlUnderTest) -> None:
    """A record the database refuses fails alone: the records group-committed with it are still written
    (bug class: one bad row dropping a whole batch of served, never-billed requests)."""
    ledger = SqlLedger(sql_db.engine)
    await ledger.start()
    try:
        good = [_record(f"good-{index}", 10, 1_000_000 + index) for index in range(5)]
        bad = _record("bad", 10, 1_000_000, targets=(KEY,))
        bad = SpendRecord(**{**{f: getattr(bad, f) for f in bad.__dataclass_fields__}, "route": None})  # type: ignore[arg-type]
        results = await asyncio.gather(*(ledger.append(r) for r in [*good, bad]), return_exceptions=True)
    finally:
        await ledger.close()
    assert results[:5] == [True] * 5
    assert isinstance(results[5], Exception)
    async with sql_db.engine.connect() as connection:
        ids = (await connection.execute(select(spend_records.c.request_id))).scalars().all()
    assert sorted(ids) == sorted(r.request_id for r in good)
