"""Dashboard sessions in SQL, shared by every instance on the same database (docs/decisions/0008).

Rows are keyed by the sha256 of the session id, never the id itself: reading this table does not give anyone a
cookie that works.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index, String, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.dashboard_sessions import PrincipalKind, SessionRecord
from ledgergate.storage.sql.tables import metadata

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("principal_kind", String(16), nullable=False),
    Column("principal_id", String(255), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at_s", BigInteger, nullable=False),
    Column("last_seen_s", BigInteger, nullable=False),
    Column("expires_at_s", BigInteger, nullable=False),
    Index("ix_dashboard_sessions_principal", "principal_kind", "principal_id"),
    Index("ix_dashboard_sessions_expires", "expires_at_s"),
)


def _record(row: Any) -> SessionRecord | None:
    try:
        kind = PrincipalKind(row.principal_kind)
    except ValueError:
        return None  # written by a newer version: not ours to honour
    return SessionRecord(kind, row.principal_id, row.csrf_token, row.created_at_s, row.last_seen_s, row.expires_at_s)


class SqlDashboardSessions:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, id_hash: str, record: SessionRecord) -> None:
        """Store a new session; sessions past their absolute end are purged in the same transaction."""
        table = dashboard_sessions
        async with self._engine.begin() as connection:
            await connection.execute(delete(table).where(table.c.expires_at_s <= record.created_at_s))
            await connection.execute(
                insert(table).values(
                    id_hash=id_hash,
                    principal_kind=record.principal_kind.value,
                    principal_id=record.principal_id,
                    csrf_token=record.csrf_token,
                    created_at_s=record.created_at_s,
                    last_seen_s=record.last_seen_s,
                    expires_at_s=record.expires_at_s,
                )
            )

    async def get(self, id_hash: str) -> SessionRecord | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(dashboard_sessions).where(dashboard_sessions.c.id_hash == id_hash))
            ).first()
        return None if row is None else _record(row)

    async def touch(self, id_hash: str, now_s: int) -> None:
        table = dashboard_sessions
        async with self._engine.begin() as connection:
            await connection.execute(update(table).where(table.c.id_hash == id_hash).values(last_seen_s=now_s))

    async def revoke(self, id_hash: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(delete(dashboard_sessions).where(dashboard_sessions.c.id_hash == id_hash))

    async def revoke_principal(self, kind: PrincipalKind, principal_id: str) -> int:
        """End every session of one principal (a key that was blocked, deleted or rotated); how many ended."""
        table = dashboard_sessions
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(table).where(table.c.principal_kind == kind.value, table.c.principal_id == principal_id)
            )
        count: int = result.rowcount
        return count
