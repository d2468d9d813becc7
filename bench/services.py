"""The shared services of the multi-instance targets: a fresh PostgreSQL database and a fresh Redis key prefix.

Both are created for one target and removed after it (the database dropped, the prefix's keys deleted), so a
run leaves nothing behind and never touches other users of the same servers. When either server is
unreachable, ``provision`` says why and the caller skips the PostgreSQL + Redis targets.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL_TEMPLATE = "postgresql://postgres@127.0.0.1:5432/{database}"
REDIS_URL = "redis://127.0.0.1:6379/0"
CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Services:
    database: str
    database_url: str
    redis_url: str
    redis_key_prefix: str


async def _postgres(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=CONNECT_TIMEOUT_S)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=10)


def unavailable_reason() -> str | None:
    """None when PostgreSQL and Redis both answer, else a one-line reason to skip their targets."""
    try:
        client = _redis()
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure means "skip", with the reason printed
        return f"Redis {REDIS_URL} unreachable ({type(exc).__name__}: {exc})"
    try:
        asyncio.run(_postgres("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL {POSTGRES_ADMIN_URL} unreachable ({type(exc).__name__}: {exc})"
    return None


def provision() -> Services:
    suffix = uuid.uuid4().hex[:12]
    database = f"ledgergate_bench_{suffix}"
    asyncio.run(_postgres(f'CREATE DATABASE "{database}"'))
    return Services(
        database=database,
        database_url=POSTGRES_URL_TEMPLATE.format(database=database),
        redis_url=REDIS_URL,
        redis_key_prefix=f"lgbench-{suffix}",
    )


def release(services: Services) -> None:
    """Drop the database and delete the prefix's Redis keys; after the gateways stopped."""
    try:
        client = _redis()
        try:
            batch = [key for key in client.scan_iter(match=f"{services.redis_key_prefix}*", count=1000)]
            for start in range(0, len(batch), 500):
                client.delete(*batch[start : start + 500])
        finally:
            client.close()
    finally:
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{services.database}" WITH (FORCE)'))


async def _ledger_summary(database_url: str) -> dict[str, Any]:
    import asyncpg

    connection = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S)
    try:
        rows = await connection.fetch("SELECT status, count(*), sum(cost_nanos) FROM spend_records GROUP BY status")
    finally:
        await connection.close()
    return {row[0]: {"records": row[1], "cost_nanos": int(row[2] or 0)} for row in rows}


def ledger_summary(services: Services) -> dict[str, Any]:
    """Spend records by status in the target's database, read after its gateways stopped."""
    return asyncio.run(_ledger_summary(services.database_url))
