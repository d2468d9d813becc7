"""``ledgergate db ...``: the database schema (the same migrations a gateway applies when it starts)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from alembic.runtime.migration import MigrationContext
from alembic.util.exc import CommandError
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.cli.config_cmd import load_or_exit
from ledgergate.cli.render import fail, say, status
from ledgergate.config import ConfigError, normalise_database_url
from ledgergate.storage.sql.engine import create_engine, upgrade_schema

app = typer.Typer(help="Database: schema migrations.", no_args_is_help=True)

DATABASE_URL_ENV = "LEDGERGATE_DATABASE_URL"


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _upgrade(url: str) -> tuple[str | None, str | None]:
    """Apply pending migrations; return the revision before and after."""
    engine: AsyncEngine = create_engine(url)
    try:
        async with engine.connect() as connection:
            before = await connection.run_sync(_revision)
        await upgrade_schema(engine)
        async with engine.connect() as connection:
            after = await connection.run_sync(_revision)
        return before, after
    finally:
        await engine.dispose()


@app.command()
def upgrade(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar=DATABASE_URL_ENV,
            help="The database, e.g. sqlite:///./ledgergate.db or postgresql://user:password@host/db "
            "(default: the config file's database_url).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Read database_url from this LiteLLM-style YAML config.")
    ] = None,
) -> None:
    """Apply every pending schema migration (idempotent: an up-to-date schema is left as it is)."""
    url = database_url or load_or_exit(config, False).settings.database_url
    try:
        # the same normalisation as the gateway's: postgresql:// and sqlite:// get their async drivers
        url = normalise_database_url(url)
        shown = make_url(url).render_as_string(hide_password=True)
    except (ConfigError, ArgumentError):
        fail(f"invalid database URL {url!r}: expected postgresql://... or sqlite:///...")
    try:
        with status(f"upgrading the schema of {shown} ..."):
            before, after = asyncio.run(_upgrade(url))
    except (SQLAlchemyError, CommandError, OSError, ImportError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(f"schema upgrade of {shown} failed: {reason}")
    if before == after:
        say(f"{shown}: schema already at revision {after} (nothing to do)")
    else:
        say(f"{shown}: schema upgraded from revision {before or '(empty database)'} to {after}")
