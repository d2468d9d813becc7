"""A migrated database of each dialect (a SQLite file, a fresh PostgreSQL schema) with a started SQL ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.ledger import SqlLedger
from ledgergate.storage.sql.spend_queries import SpendQueries
from tests.contract.services import create_pg_schema, drop_pg_schema, pg_engine


@dataclass(frozen=True)
class RollupDb:
    dialect: str
    engine: AsyncEngine
    ledger: SqlLedger
    queries: SpendQueries


@pytest.fixture(params=["sqlite", "postgresql"])
async def rollup_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RollupDb]:
    schema = None
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    else:
        schema = await create_pg_schema()  # skips (or fails when services are required) if unreachable
        engine = pg_engine(schema)
    try:
        await upgrade_schema(engine)
        ledger = SqlLedger(engine)
        await ledger.start()
        try:
            yield RollupDb(request.param, engine, ledger, SpendQueries(engine))
        finally:
            await ledger.close()
    finally:
        await engine.dispose()
        if schema is not None:
            await drop_pg_schema(schema)
