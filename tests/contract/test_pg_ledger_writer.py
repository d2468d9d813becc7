"""The one-statement PostgreSQL ledger writer (``PgLedgerWriter``) on a real, migrated PostgreSQL schema."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import RequestStatus, SpendRecord
from ledgergate.storage.sql.engine import upgrade_schema
from ledgergate.storage.sql.ledger import charge_rows, record_row
from ledgergate.storage.sql.pg_ledger_writer import PgLedgerWriter
from ledgergate.storage.sql.rollup_rows import rollup_adds
from tests.contract.services import POSTGRES_URL, create_pg_schema, drop_pg_schema, pg_engine
from tests.support.timing import scaled, until

HOUR_S = 1_767_225_600  # 2026-01-01T00:00Z
DAY_S = 86_400
TZ = "UTC"
KEY = EntityRef(EntityType.KEY, "k1")
TEAM = EntityRef(EntityType.TEAM, "t1")
TAG = EntityRef(EntityType.TAG, "g1")
INT8_MAX = 2**63 - 1


def _record(
    request_id: str, cost_nanos: int, at_s: int = HOUR_S, targets: tuple[EntityRef, ...] = (KEY, TEAM)
) -> SpendRecord:
    return SpendRecord(
        request_id=request_id,
        key_id=targets[0].id,
        targets=targets,
        model="demo",
        deployment_id="demo-0",
        route="/v1/chat/completions",
        prompt_tokens=3,
        completion_tokens=4,
        cost_nanos=cost_nanos,
        status=RequestStatus.SUCCESS,
        charged_at_us=at_s * 1_000_000,
        ended_at_us=at_s * 1_000_000 + 1,
        team_id=TEAM.id if TEAM in targets else None,
        tags=("a",),
    )


async def _write(writer: PgLedgerWriter, records: Sequence[SpendRecord], timezone: str = TZ) -> set[str]:
    """What ``SqlLedger`` hands the writer for these records (UTC days)."""
    rows = [record_row(record) for record in records]
    charges = [charge_rows(record) for record in records]
    at_s = [record.charged_at_us // 1_000_000 for record in records]
    hourly = [rollup_adds(record, s // 3600 * 3600) for record, s in zip(records, at_s, strict=True)]
    daily = [rollup_adds(record, s // DAY_S * DAY_S) for record, s in zip(records, at_s, strict=True)]
    return await writer.write(rows, charges, hourly, daily, timezone)


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = await create_pg_schema()
    try:
        engine = pg_engine(name)
        try:
            await upgrade_schema(engine)
        finally:
            await engine.dispose()
        yield name
    finally:
        await drop_pg_schema(name)


@pytest.fixture
async def engine(schema: str) -> AsyncIterator[AsyncEngine]:
    engine = pg_engine(schema)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def writer(engine: AsyncEngine) -> AsyncIterator[PgLedgerWriter]:
    writer = PgLedgerWriter(engine)
    try:
        yield writer
    finally:
        await writer.close()


async def _rows(engine: AsyncEngine, query: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(text(query))).all()]


async def _counts(engine: AsyncEngine) -> tuple[int, ...]:
    tables = ("spend_records", "spend_charges", "spend_rollups", "spend_daily_rollups")
    (row,) = await _rows(engine, "SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in tables))
    return tuple(int(value) for value in row)


async def _rollups_match_charges(engine: AsyncEngine) -> None:
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
    hourly = await _rows(
        engine,
        "SELECT entity_type, entity_id, model, hour_start_s, cost_nanos, requests, prompt_tokens, completion_tokens "
        "FROM spend_rollups ORDER BY 1, 2, 3, 4",
    )
    daily = await _rows(
        engine,
        "SELECT entity_type, entity_id, model, day_start_s, cost_nanos, requests, prompt_tokens, completion_tokens "
        f"FROM spend_daily_rollups WHERE timezone = '{TZ}' ORDER BY 1, 2, 3, 4",
    )
    expected_hourly = await _rows(engine, per_charge.format(us=3_600_000_000, s=3600))
    expected_daily = await _rows(engine, per_charge.format(us=DAY_S * 1_000_000, s=DAY_S))
    assert [tuple(int(v) if not isinstance(v, str) else v for v in row) for row in expected_hourly] == hourly
    assert [tuple(int(v) if not isinstance(v, str) else v for v in row) for row in expected_daily] == daily


async def test_pg_writer_returns_the_inserted_ids_and_writes_their_charges_and_rollups(
    engine: AsyncEngine, writer: PgLedgerWriter
) -> None:
    inserted = await _write(writer, [_record("r1", 100), _record("r2", 250, HOUR_S + 3600, (KEY, TEAM, TAG))])

    assert inserted == {"r1", "r2"}
    assert await _counts(engine) == (2, 5, 7, 4)  # hourly: 3 + 4 rows (2 hours); daily: one day, 4 rows
    assert await _rows(engine, "SELECT entity_id, sum(cost_nanos) FROM spend_charges GROUP BY 1 ORDER BY 1") == [
        ("g1", 250),
        ("k1", 350),
        ("t1", 350),
    ]
    await _rollups_match_charges(engine)


async def test_pg_writer_request_id_already_in_the_ledger_adds_nothing(
    engine: AsyncEngine, writer: PgLedgerWriter
) -> None:
    assert await _write(writer, [_record("r1", 100)]) == {"r1"}
    before = await _counts(engine)

    # Same id, another cost and more targets: nothing of it may reach the charges or the rollups.
    assert await _write(writer, [_record("r1", 999, targets=(KEY, TEAM, TAG)), _record("r2", 5)]) == {"r2"}

    assert await _rows(engine, "SELECT cost_nanos FROM spend_records WHERE request_id = 'r1'") == [(100,)]
    assert await _rows(engine, "SELECT count(*) FROM spend_charges WHERE request_id = 'r1'") == [(2,)]
    assert await _counts(engine) == (before[0] + 1, before[1] + 2, before[2], before[3])
    await _rollups_match_charges(engine)


async def test_pg_writer_duplicate_in_one_batch_is_written_once_by_its_first_record(
    engine: AsyncEngine, writer: PgLedgerWriter
) -> None:
    batch = [_record("r1", 100), _record("r1", 999, targets=(KEY, TEAM, TAG)), _record("r2", 7), _record("r1", 5)]

    assert await _write(writer, batch) == {"r1", "r2"}

    assert await _rows(engine, "SELECT request_id, cost_nanos FROM spend_records ORDER BY 1") == [
        ("r1", 100),
        ("r2", 7),
    ]
    assert await _rows(engine, "SELECT count(*), sum(cost_nanos) FROM spend_charges") == [(4, 214)]
    assert await _rows(engine, "SELECT cost_nanos, requests FROM spend_rollups WHERE entity_id = 'k1'") == [(107, 2)]
    await _rollups_match_charges(engine)


async def test_pg_writer_rollups_equal_the_raw_charges_over_many_batches(
    engine: AsyncEngine, writer: PgLedgerWriter
) -> None:
    chooser = random.Random(6)
    entities = [EntityRef(EntityType.KEY, f"k{i}") for i in range(4)] + [TEAM, TAG]
    for batch_index in range(20):
        batch = []
        for index in range(chooser.randint(1, 12)):
            targets = (chooser.choice(entities[:4]), *chooser.sample(entities[4:], chooser.randint(0, 2)))
            at_s = HOUR_S + chooser.randrange(3 * DAY_S)
            request_id = f"r{chooser.randrange(150)}" if index % 4 == 0 else f"b{batch_index}-{index}"
            batch.append(_record(request_id, chooser.randrange(1, 10**12), at_s, targets))
        await _write(writer, batch)

    await _rollups_match_charges(engine)


async def test_pg_writers_of_two_instances_on_the_same_rollup_rows_neither_deadlock_nor_lose_a_sum(
    schema: str,
) -> None:
    engines = [pg_engine(schema), pg_engine(schema)]
    writers = [PgLedgerWriter(engine) for engine in engines]
    shared = [KEY, TEAM, TAG, EntityRef(EntityType.CUSTOMER, "c1"), EntityRef(EntityType.ORGANIZATION, "o1")]
    try:

        async def run(instance: int) -> None:
            chooser = random.Random(instance)
            for batch_index in range(40):
                # Every batch touches the same rows, listed in a random order: only the writer's own lock order
                # keeps the two instances from deadlocking.
                batch = [
                    _record(
                        f"i{instance}-{batch_index}-{index}", 1_000 + index, HOUR_S, tuple(chooser.sample(shared, 5))
                    )
                    for index in range(8)
                ]
                await _write(writers[instance], batch)

        await asyncio.gather(run(0), run(1))

        rows = await _rows(
            engines[0], "SELECT entity_id, cost_nanos, requests FROM spend_rollups WHERE entity_type <> 'record'"
        )
        assert sorted(rows) == sorted((entity.id, 2 * 40 * sum(1_000 + i for i in range(8)), 640) for entity in shared)
        await _rollups_match_charges(engines[0])
    finally:
        for writer in writers:
            await writer.close()
        for engine in engines:
            await engine.dispose()


async def test_pg_writer_value_refused_by_the_database_fails_the_whole_statement(
    engine: AsyncEngine, writer: PgLedgerWriter
) -> None:
    await _write(writer, [_record("r0", INT8_MAX - 10)])
    before = await _counts(engine)

    # The daily upsert comes last: a timezone too long for its column fails it after everything else ran.
    with pytest.raises(asyncpg.StringDataRightTruncationError):
        await _write(writer, [_record("r1", 5)], timezone="X" * 65)
    # The hourly sum overflows bigint on update; the record and charges of the same statement must go too.
    with pytest.raises(asyncpg.NumericValueOutOfRangeError):
        await _write(writer, [_record("r2", 11)])

    assert await _counts(engine) == before
    assert await _rows(engine, "SELECT request_id FROM spend_records") == [("r0",)]
    # The writer goes on with the same connection after a refusal.
    assert await _write(writer, [_record("r3", 1, HOUR_S + DAY_S)]) == {"r3"}
    await _rollups_match_charges(engine)


async def test_pg_writer_replaces_a_connection_closed_while_idle(schema: str) -> None:
    name = f"lgtest-writer-{schema}"
    engine = create_async_engine(
        POSTGRES_URL, connect_args={"server_settings": {"search_path": schema, "application_name": name}}
    )
    writer = PgLedgerWriter(engine)
    try:
        assert await _write(writer, [_record("r1", 1)]) == {"r1"}
        # End the writer's idle session as a PostgreSQL restart would, and wait until it is gone.
        terminate = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
        admin = pg_engine(schema)
        try:
            assert await _rows(admin, terminate) == [(True,)]

            async def gone() -> bool:
                return not await _rows(admin, f"SELECT 1 FROM pg_stat_activity WHERE application_name = '{name}'")

            await until(gone, "the writer's session is terminated", within_s=10)
            await asyncio.sleep(scaled(0.05))  # the client reads the server's goodbye on its next loop iterations
        finally:
            await admin.dispose()

        assert await _write(writer, [_record("r2", 2)]) == {"r2"}
        assert await _counts(engine) == (2, 4, 3, 3)
    finally:
        await writer.close()
        await engine.dispose()
