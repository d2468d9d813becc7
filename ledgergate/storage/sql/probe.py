"""The database's answer to the readiness probe."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine


class DatabaseProbe:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def ping(self) -> None:
        async with self._engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
