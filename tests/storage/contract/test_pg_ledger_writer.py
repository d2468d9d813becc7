"""What only the one-statement PostgreSQL ledger writer (``PgLedgerWriter``) does, on a real, migrated PostgreSQL
schema: a refused value fails the whole statement, a connection closed while idle is replaced. What both writers do
is the writer contract (``test_ledger_writer_contract.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledgergate.storage.sql.engine import upgrade_schema
from ledgergate.storage.sql.pg_ledger_writer import PgLedgerWriter
from tests.storage.contract.services import POSTGRES_URL, create_pg_schema, drop_pg_schema, pg_engine
from tests.storage.contract.test_ledger_writer_contract import (
    DAY_S,
    HOUR_S,
    counts,
    record,
    rollups_match_charges,
    rows,
    write,
)
from tests.support.timing import scaled, until

INT8_MAX = 2**63 - 1


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


async def test_pg_writer_value_refused_by_the_database_fails_the_whole_statement(
    engine: AsyncEngine, writer: PgLedgerWriter
) -> None:
    await write(writer, [record("r0", INT8_MAX - 10)])
    before = await counts(engine)

    # The daily upsert comes last: a timezone too long for its column fails it after everything else ran.
    with pytest.raises(asyncpg.StringDataRightTruncationError):
        await write(writer, [record("r1", 5)], timezone="X" * 65)
    # The hourly sum overflows bigint on update; the record and charges of the same statement must go too.
    with pytest.raises(asyncpg.NumericValueOutOfRangeError):
        await write(writer, [record("r2", 11)])

    assert await counts(engine) == before
    assert await rows(engine, "SELECT request_id FROM spend_records") == [("r0",)]
    # The writer goes on with the same connection after a refusal.
    assert await write(writer, [record("r3", 1, HOUR_S + DAY_S)]) == {"r3"}
    await rollups_match_charges(engine)


async def test_pg_writer_replaces_a_connection_closed_while_idle(schema: str) -> None:
    name = f"lgtest-writer-{schema}"
    engine = create_async_engine(
        POSTGRES_URL, connect_args={"server_settings": {"search_path": schema, "application_name": name}}
    )
    writer = PgLedgerWriter(engine)
    try:
        assert await write(writer, [record("r1", 1)]) == {"r1"}
        # End the writer's idle session as a PostgreSQL restart would, and wait until it is gone.
        terminate = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
        admin = pg_engine(schema)
        try:
            assert await rows(admin, terminate) == [(True,)]

            async def gone() -> bool:
                return not await rows(admin, f"SELECT 1 FROM pg_stat_activity WHERE application_name = '{name}'")

            await until(gone, "the writer's session is terminated", within_s=10)
            await asyncio.sleep(scaled(0.05))  # the client reads the server's goodbye on its next loop iterations
        finally:
            await admin.dispose()

        assert await write(writer, [record("r2", 2)]) == {"r2"}
        assert await counts(engine) == (2, 4, 3, 3)
    finally:
        await writer.close()
        await engine.dispose()
