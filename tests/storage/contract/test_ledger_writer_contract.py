"""The ledger writers' contract: the SQLite writer (``SqliteBatchWriter``) and the PostgreSQL one
(``PgLedgerWriter``) take the same ``LedgerBatch`` and must leave the same rows, on a real migrated database of each
dialect. A request id already in the ledger wins; a repeated one in a batch is written once, by its first record."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import SpendRecord
from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.ledger import SqlLedger
from ledgergate.storage.sql.ledger_rows import RECORD_COLUMNS, LedgerBatch, LedgerBatchWriter, ledger_batch, record_row
from ledgergate.storage.sql.pg_ledger_writer import PgLedgerWriter
from ledgergate.storage.sql.rollup_rows import hour_start_s
from ledgergate.storage.sql.sqlite_writer import SqliteBatchWriter
from ledgergate.storage.sql.tables import spend_records
from tests.builders import spend_record
from tests.storage.contract.services import SqlUnderTest, create_pg_schema, drop_pg_schema, pg_engine

HOUR_S = 1_767_225_600  # 2026-01-01T00:00Z
DAY_S = 86_400
TZ = "UTC"
KEY = EntityRef(EntityType.KEY, "k1")
TEAM = EntityRef(EntityType.TEAM, "t1")
TAG = EntityRef(EntityType.TAG, "g1")


def record(
    request_id: str, cost_nanos: int, at_s: int = HOUR_S, targets: tuple[EntityRef, ...] = (KEY, TEAM)
) -> SpendRecord:
    return spend_record(
        request_id,
        cost_nanos=cost_nanos,
        charged_at_us=at_s * 1_000_000,
        targets=targets,
        prompt_tokens=3,
        completion_tokens=4,
        team_id=TEAM.id if TEAM in targets else None,
        tags=("a",),
    )


async def write(writer: LedgerBatchWriter, records: Sequence[SpendRecord], timezone: str = TZ) -> set[str]:
    """What ``SqlLedger`` hands the writer for these records (UTC days)."""
    day_s = DAY_S * 1_000_000
    return await writer.write(ledger_batch(records, hour_start_s, lambda at_us: at_us // day_s * DAY_S, timezone))


async def rows(engine: AsyncEngine, query: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(text(query))).all()]


async def counts(engine: AsyncEngine) -> tuple[int, ...]:
    tables = ("spend_records", "spend_charges", "spend_rollups", "spend_daily_rollups")
    (row,) = await rows(engine, "SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in tables))
    return tuple(int(value) for value in row)


async def rollups_match_charges(engine: AsyncEngine) -> None:
    """Every hourly and daily rollup row is the sum of the raw rows it covers, and no raw row is left out."""
    per_charge = """
        SELECT c.entity_type, c.entity_id, r.model, (c.charged_at_us / {us}) * {s} AS start_s, sum(c.cost_nanos),
               count(*), sum(r.prompt_tokens), sum(r.completion_tokens)
        FROM spend_charges c JOIN spend_records r USING (request_id) GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT 'record', '*', model, (charged_at_us / {us}) * {s}, sum(cost_nanos), count(*), sum(prompt_tokens),
               sum(completion_tokens)
        FROM spend_records GROUP BY 3, 4
        ORDER BY 1, 2, 3, 4"""
    hourly = await rows(
        engine,
        "SELECT entity_type, entity_id, model, hour_start_s, cost_nanos, requests, prompt_tokens, completion_tokens "
        "FROM spend_rollups ORDER BY 1, 2, 3, 4",
    )
    daily = await rows(
        engine,
        "SELECT entity_type, entity_id, model, day_start_s, cost_nanos, requests, prompt_tokens, completion_tokens "
        f"FROM spend_daily_rollups WHERE timezone = '{TZ}' ORDER BY 1, 2, 3, 4",
    )
    expected_hourly = await rows(engine, per_charge.format(us=3_600_000_000, s=3600))
    expected_daily = await rows(engine, per_charge.format(us=DAY_S * 1_000_000, s=DAY_S))
    assert [tuple(int(v) if not isinstance(v, str) else v for v in row) for row in expected_hourly] == hourly
    assert [tuple(int(v) if not isinstance(v, str) else v for v in row) for row in expected_daily] == daily


def open_writer(engine: AsyncEngine) -> LedgerBatchWriter:
    """The writer ``SqlLedger`` uses on this engine's database."""
    if engine.dialect.name == "postgresql":
        return PgLedgerWriter(engine)
    sqlite_writer = SqliteBatchWriter(engine.url.database or "")
    sqlite_writer.start()
    return sqlite_writer


@pytest.fixture
async def writer(sql_db: SqlUnderTest) -> AsyncIterator[LedgerBatchWriter]:
    opened = open_writer(sql_db.engine)
    try:
        yield opened
    finally:
        await opened.close()


async def test_ledger_writer_returns_the_inserted_ids_and_writes_their_charges_and_rollups(
    sql_db: SqlUnderTest, writer: LedgerBatchWriter
) -> None:
    inserted = await write(writer, [record("r1", 100), record("r2", 250, HOUR_S + 3600, (KEY, TEAM, TAG))])

    assert inserted == {"r1", "r2"}
    assert await counts(sql_db.engine) == (2, 5, 7, 4)  # hourly: 3 + 4 rows (2 hours); daily: one day, 4 rows
    assert await rows(sql_db.engine, "SELECT entity_id, sum(cost_nanos) FROM spend_charges GROUP BY 1 ORDER BY 1") == [
        ("g1", 250),
        ("k1", 350),
        ("t1", 350),
    ]
    await rollups_match_charges(sql_db.engine)


async def test_ledger_writer_request_id_already_in_the_ledger_adds_nothing(
    sql_db: SqlUnderTest, writer: LedgerBatchWriter
) -> None:
    assert await write(writer, [record("r1", 100)]) == {"r1"}
    before = await counts(sql_db.engine)

    # Same id, another cost and more targets: nothing of it may reach the charges or the rollups.
    assert await write(writer, [record("r1", 999, targets=(KEY, TEAM, TAG)), record("r2", 5)]) == {"r2"}

    assert await rows(sql_db.engine, "SELECT cost_nanos FROM spend_records WHERE request_id = 'r1'") == [(100,)]
    assert await rows(sql_db.engine, "SELECT count(*) FROM spend_charges WHERE request_id = 'r1'") == [(2,)]
    assert await counts(sql_db.engine) == (before[0] + 1, before[1] + 2, before[2], before[3])
    await rollups_match_charges(sql_db.engine)


async def test_ledger_writer_duplicate_in_one_batch_is_written_once_by_its_first_record(
    sql_db: SqlUnderTest, writer: LedgerBatchWriter
) -> None:
    batch = [record("r1", 100), record("r1", 999, targets=(KEY, TEAM, TAG)), record("r2", 7), record("r1", 5)]

    assert await write(writer, batch) == {"r1", "r2"}

    assert await rows(sql_db.engine, "SELECT request_id, cost_nanos FROM spend_records ORDER BY 1") == [
        ("r1", 100),
        ("r2", 7),
    ]
    assert await rows(sql_db.engine, "SELECT count(*), sum(cost_nanos) FROM spend_charges") == [(4, 214)]
    assert await rows(sql_db.engine, "SELECT cost_nanos, requests FROM spend_rollups WHERE entity_id = 'k1'") == [
        (107, 2)
    ]
    await rollups_match_charges(sql_db.engine)


async def test_ledger_writer_rollups_equal_the_raw_charges_over_many_batches(
    sql_db: SqlUnderTest, writer: LedgerBatchWriter
) -> None:
    chooser = random.Random(6)
    entities = [EntityRef(EntityType.KEY, f"k{i}") for i in range(4)] + [TEAM, TAG]
    for batch_index in range(20):
        batch = []
        for index in range(chooser.randint(1, 12)):
            targets = (chooser.choice(entities[:4]), *chooser.sample(entities[4:], chooser.randint(0, 2)))
            at_s = HOUR_S + chooser.randrange(3 * DAY_S)
            request_id = f"r{chooser.randrange(150)}" if index % 4 == 0 else f"b{batch_index}-{index}"
            batch.append(record(request_id, chooser.randrange(1, 10**12), at_s, targets))
        await write(writer, batch)

    await rollups_match_charges(sql_db.engine)


async def test_ledger_writers_of_two_instances_on_the_same_rollup_rows_neither_deadlock_nor_lose_a_sum(
    sql_db: SqlUnderTest,
) -> None:
    engines = [sql_db.engine_factory(), sql_db.engine_factory()]
    writers = [open_writer(sql_db.engine) for engine in engines]
    shared = [KEY, TEAM, TAG, EntityRef(EntityType.CUSTOMER, "c1"), EntityRef(EntityType.ORGANIZATION, "o1")]
    try:

        async def run(instance: int) -> None:
            chooser = random.Random(instance)
            for batch_index in range(40):
                # Every batch touches the same rows, listed in a random order: only the writer's own lock order
                # keeps the two instances from deadlocking.
                batch = [
                    record(
                        f"i{instance}-{batch_index}-{index}", 1_000 + index, HOUR_S, tuple(chooser.sample(shared, 5))
                    )
                    for index in range(8)
                ]
                await write(writers[instance], batch)

        await asyncio.gather(run(0), run(1))

        rollups = await rows(
            engines[0], "SELECT entity_id, cost_nanos, requests FROM spend_rollups WHERE entity_type <> 'record'"
        )
        per_entity = 2 * 40 * sum(1_000 + i for i in range(8))
        assert sorted(rollups) == sorted((entity.id, per_entity, 640) for entity in shared)
        await rollups_match_charges(engines[0])
    finally:
        for writer in writers:
            await writer.close()
        for engine in engines:
            await engine.dispose()


async def test_ledger_writer_batch_of_records_already_in_the_ledger_writes_nothing(
    sql_db: SqlUnderTest, writer: LedgerBatchWriter
) -> None:
    """A replayed batch (the spill file after a commit that did go through) adds no row and reports no id."""
    batch = [record("r1", 100), record("r2", 7, HOUR_S + DAY_S, (KEY, TAG))]
    assert await write(writer, batch) == {"r1", "r2"}
    before = await counts(sql_db.engine)

    assert await write(writer, batch) == set()
    assert await write(writer, [record("r2", 1, targets=(TEAM,)), record("r1", 1)]) == set()

    assert await counts(sql_db.engine) == before
    await rollups_match_charges(sql_db.engine)


def test_record_rows_name_every_spend_records_column_with_the_records_value() -> None:
    """The rows both writers insert are built in one place, in the table's column order: a column added to the
    table without its value (or values shifted by one) fails here, not in one dialect's writer."""
    written = record("r1", 123, targets=(KEY, TEAM, TAG, KEY))
    assert tuple(column.name for column in spend_records.columns) == RECORD_COLUMNS
    assert record_row(written) == {
        "request_id": "r1",
        "key_id": "k1",
        "user_id": None,
        "team_id": "t1",
        "organization_id": None,
        "customer_id": None,
        "tags": '["a"]',
        "model": "demo",
        "deployment_id": "demo-0",
        "route": "/v1/chat/completions",
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "cost_nanos": 123,
        "status": "success",
        "charged_at_us": HOUR_S * 1_000_000,
        "ended_at_us": HOUR_S * 1_000_000 + 1,
    }
    batch = ledger_batch([written, record("r1", 999)], hour_start_s, lambda _: None, TZ)
    assert batch.request_ids == ["r1"]  # the later duplicate is not in the batch at all
    assert batch.charges == [
        ("r1", "key", "k1", 123, HOUR_S * 1_000_000),
        ("r1", "team", "t1", 123, HOUR_S * 1_000_000),
        ("r1", "tag", "g1", 123, HOUR_S * 1_000_000),
    ]
    assert batch.daily == []  # no daily rows kept: none built


def test_ledger_batch_with_a_repeated_request_id_is_refused() -> None:
    """A batch built by hand around ``ledger_batch`` with one request id twice would double its charges on
    PostgreSQL and fail SQLite's insert: it is refused where it is built, before any writer sees it."""
    row = record_row(record("r1", 1))
    values = tuple(row[column] for column in RECORD_COLUMNS)
    with pytest.raises(ValueError, match="each request id once"):
        LedgerBatch([values, values], [], [], [], TZ)


async def test_sql_ledger_refuses_an_in_memory_sqlite_database() -> None:
    """No generic write path is left: an engine neither writer serves is refused when the ledger is built, naming
    the database, instead of a ledger whose writer would write into another, empty, in-memory database."""
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        with pytest.raises(ValueError, match=r"PostgreSQL database or a SQLite file.*:memory:"):
            SqlLedger(engine)
    finally:
        await engine.dispose()


async def test_both_writers_leave_identical_rows_for_the_same_batches(tmp_path: Path) -> None:
    """One batch definition, two dialects: the same random batches (duplicates within and across batches, many
    targets) leave the same records, charges, hourly and daily rollups on SQLite and on PostgreSQL."""
    chooser = random.Random(13)
    entities = [EntityRef(EntityType.KEY, f"k{i}") for i in range(3)] + [TEAM, TAG]
    batches = []
    for batch_index in range(12):
        batch = []
        for index in range(chooser.randint(1, 9)):
            targets = (chooser.choice(entities[:3]), *chooser.sample(entities[3:], chooser.randint(0, 2)))
            request_id = f"r{chooser.randrange(40)}" if index % 3 == 0 else f"b{batch_index}-{index}"
            batch.append(
                record(request_id, chooser.randrange(1, 10**12), HOUR_S + chooser.randrange(2 * DAY_S), targets)
            )
        batches.append(batch)
    tables = {
        "spend_records": "SELECT * FROM spend_records ORDER BY request_id",
        "spend_charges": "SELECT * FROM spend_charges ORDER BY request_id, entity_type, entity_id",
        "spend_rollups": "SELECT * FROM spend_rollups ORDER BY entity_type, entity_id, model, hour_start_s",
        "spend_daily_rollups": "SELECT * FROM spend_daily_rollups ORDER BY entity_type, entity_id, model, day_start_s",
    }
    results = []
    schema = await create_pg_schema()
    try:
        for engine in (create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"), pg_engine(schema)):
            try:
                await upgrade_schema(engine)
                writer = open_writer(engine)
                try:
                    inserted = [sorted(await write(writer, batch)) for batch in batches]
                finally:
                    await writer.close()
                results.append((inserted, {table: await rows(engine, query) for table, query in tables.items()}))
            finally:
                await engine.dispose()
    finally:
        await drop_pg_schema(schema)
    sqlite_result, pg_result = results
    assert sqlite_result == pg_result
    assert len(pg_result[1]["spend_records"]) == len({r.request_id for batch in batches for r in batch})
