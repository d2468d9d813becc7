"""A migrated database of each dialect (a SQLite file, a fresh PostgreSQL schema) with a started SQL ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.ledger import SqlLedger
from ledgergate.storage.sql.spend_queries import SpendQueries
from tests.storage.contract.services import create_pg_schema, drop_pg_schema, pg_engine


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


@dataclass
class LedgerDb:
    """A migrated database of one dialect on which a test starts ledgers (instances) in timezones of its choice."""

    dialect: str
    engine: AsyncEngine
    engine_factory: Callable[[], AsyncEngine]
    started: list[tuple[SqlLedger, AsyncEngine | None]] = field(default_factory=list)

    async def ledger(self, timezone: str, *, own_engine: bool = False) -> SqlLedger:
        """A started ledger keeping daily rows in ``timezone``; ``own_engine``: as another instance would."""
        engine = self.engine_factory() if own_engine else None
        ledger = SqlLedger(engine or self.engine, timezone=timezone)
        await ledger.start()
        self.started.append((ledger, engine))
        return ledger

    async def shared(self, timezone: str) -> SqlLedger:
        """One started ledger per timezone for every example of a property test."""
        for ledger, engine in self.started:
            if engine is None and ledger.timezone == timezone:
                return ledger
        return await self.ledger(timezone)

    async def close(self, ledger: SqlLedger) -> None:
        for index, (started, engine) in enumerate(self.started):
            if started is ledger:
                del self.started[index]
                await ledger.close()
                if engine is not None:
                    await engine.dispose()
                return


@pytest.fixture(params=["sqlite", "postgresql"])
async def ledger_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerDb]:
    schema = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"

        def factory() -> AsyncEngine:
            return create_engine(url)
    else:
        schema = await create_pg_schema()

        def factory() -> AsyncEngine:
            return pg_engine(str(schema))

    engine = factory()
    db = LedgerDb(request.param, engine, factory)
    try:
        await upgrade_schema(engine)
        yield db
    finally:
        for ledger, _ in list(db.started):
            await db.close(ledger)
        await engine.dispose()
        if schema is not None:
            await drop_pg_schema(schema)
