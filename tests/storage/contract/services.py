"""Where the contract suites find the real services, and what they do when one is missing.

Redis: db 15 of 127.0.0.1:6379 is the tests' database. Every test uses its own key prefix (with its own hash tag)
and deletes its keys afterwards, so runs in parallel and other users of db 15 are not disturbed (no FLUSHDB).
PostgreSQL: database ``test``; every test gets a fresh, uniquely named schema (``search_path``), dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support.timing import scaled

REDIS_URL = "redis://127.0.0.1:6379/15"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REQUIRE_ENV = "LEDGERGATE_REQUIRE_SERVICES"
CONNECT_TIMEOUT_S = scaled(10.0)  # a base value (tests/support/timing.py): connecting, not a deadline of the test


def unavailable(service: str, error: BaseException) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{service} is unreachable but {REQUIRE_ENV}=1 requires it: {error!r}")
    pytest.skip(f"{service} is unreachable ({error!r}); set {REQUIRE_ENV}=1 to fail instead of skipping")


def redis_client() -> Redis:
    return Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=CONNECT_TIMEOUT_S)


async def check_redis() -> None:
    client = redis_client()
    try:
        await client.ping()
    except Exception as exc:
        unavailable("Redis at 127.0.0.1:6379", exc)
    finally:
        await client.aclose()


def unique_prefix() -> str:
    return f"lgtest:{{{uuid.uuid4().hex}}}:"


async def delete_prefixed(client: Redis, prefix: str) -> None:
    """Delete every key of one test (the prefix has no glob metacharacters)."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)


async def create_pg_schema() -> str:
    """A fresh schema in database ``test``; its name, to pass as ``search_path``."""
    name = f"lgtest_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, connect_args={"timeout": CONNECT_TIMEOUT_S})
    try:
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{name}"'))
    except Exception as exc:
        await admin.dispose()
        unavailable("PostgreSQL at 127.0.0.1:5432 (database test)", exc)
    await admin.dispose()
    return name


async def drop_pg_schema(name: str) -> None:
    admin = create_async_engine(POSTGRES_URL)
    try:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        await admin.dispose()


def pg_engine(schema: str) -> AsyncEngine:
    return create_async_engine(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})


@dataclass(frozen=True)
class SqlUnderTest:
    """A migrated database of one dialect; ``engine_factory`` opens another engine on it (another instance)."""

    dialect: str
    engine: AsyncEngine
    engine_factory: Callable[[], AsyncEngine]
    schema: str | None
