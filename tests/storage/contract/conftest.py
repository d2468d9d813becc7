"""Fixtures of the storage contract suites: every counters test runs on memory, Redis, SQLite and PostgreSQL, every
ledger test on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.ledger import SqlLedger
from tests.storage.contract.backends import Backend, ManualClock, MemoryBackend, RedisBackend, SqlBackend
from tests.storage.contract.services import (
    SqlUnderTest,
    check_redis,
    create_pg_schema,
    drop_pg_schema,
    pg_engine,
    unique_prefix,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "redis", "sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend(clock)
        return
    if request.param in ("sqlite", "postgresql"):
        async with _sql_database(request.param, tmp_path) as (_, factory):
            sql_backend = SqlBackend(clock, request.param, factory)
            try:
                yield sql_backend
            finally:
                await sql_backend.aclose()
        return
    await check_redis()
    redis_backend = RedisBackend(clock, unique_prefix())
    try:
        yield redis_backend
    finally:
        await redis_backend.aclose()


@pytest.fixture
async def redis_backend(clock: ManualClock) -> AsyncIterator[RedisBackend]:
    await check_redis()
    backend = RedisBackend(clock, unique_prefix())
    try:
        yield backend
    finally:
        await backend.aclose()


@pytest.fixture
async def sqlite_ledger(tmp_path: Path) -> AsyncIterator[SqlLedger]:
    """A real SQL ledger on a SQLite file, e.g. as the loader counters are rebuilt from."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await upgrade_schema(engine)
    ledger = SqlLedger(engine)
    await ledger.start()
    try:
        yield ledger
    finally:
        await ledger.close()
        await engine.dispose()


@asynccontextmanager
async def _sql_database(dialect: str, tmp_path: Path) -> AsyncIterator[tuple[str | None, Callable[[], AsyncEngine]]]:
    """A fresh, migrated database: a SQLite file, or a new PostgreSQL schema dropped afterwards. Yields the schema
    (None for SQLite) and a factory of engines on it."""
    schema = None
    if dialect == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"

        def factory() -> AsyncEngine:
            return create_engine(url)

    else:
        schema = await create_pg_schema()

        def factory() -> AsyncEngine:
            return pg_engine(schema)

    try:
        engine = factory()
        try:
            await upgrade_schema(engine)
        finally:
            await engine.dispose()
        yield schema, factory
    finally:
        if schema is not None:
            await drop_pg_schema(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
async def sql_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlUnderTest]:
    """A fresh database of each dialect: a SQLite file, or a new PostgreSQL schema dropped afterwards."""
    async with _sql_database(request.param, tmp_path) as (schema, factory):
        engine = factory()
        try:
            yield SqlUnderTest(request.param, engine, factory, schema)
        finally:
            await engine.dispose()


@pytest.fixture
async def sql_ledger(sql_db: SqlUnderTest) -> AsyncIterator[SqlLedger]:
    ledger = SqlLedger(sql_db.engine)
    await ledger.start()
    try:
        yield ledger
    finally:
        await ledger.close()
