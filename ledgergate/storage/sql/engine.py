"""Engine creation and schema migration for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledgergate.db_failures import is_database_failure

DEFAULT_APPLICATION_NAME = "ledgergate"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_LOCK_ID = 0x6C656467_6D696772  # "ledgmigr": one PostgreSQL advisory lock for schema upgrades


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, server_settings: dict[str, str] | None = None) -> AsyncEngine:
    """An async engine; SQLite gets WAL with ``synchronous=NORMAL`` (see docs/decisions/0003). PostgreSQL
    connections carry ``application_name=ledgergate`` (``pg_stat_activity``) unless ``server_settings`` says else."""
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    settings = {"application_name": DEFAULT_APPLICATION_NAME, **(server_settings or {})}
    engine = create_async_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args={"server_settings": settings}
    )

    @event.listens_for(engine.sync_engine, "handle_error")
    def _discard_broken_connections(context: ExceptionContext) -> None:
        # A connection killed mid-operation may stay "open" with its protocol confused (asyncpg's "another
        # operation is in progress"): SQLAlchemy would pool it again. Any database failure discards it instead.
        if is_database_failure(context.original_exception):
            context.is_disconnect = True

    return engine


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade_schema(engine: AsyncEngine) -> None:
    """Apply every pending Alembic migration (idempotent; concurrent instances serialise on the DB)."""

    def _upgrade(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Instances starting together would race to CREATE the same tables; the lock lasts to the commit.
            connection.execute(text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": _MIGRATION_LOCK_ID})
        command.upgrade(_alembic_config(connection), "head")

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
