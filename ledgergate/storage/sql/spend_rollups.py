"""Read-side rollups of the ledger for the dashboard: totals, spend per time bucket, top spenders.

Every number is summed from ``spend_records`` / ``spend_charges`` (the source of truth), never from counters.
A ``team_ids`` scope restricts the records to those charged to some teams (what a team admin may see);
``None`` means every record.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.spend_filters import Dimension
from ledgergate.storage.sql.tables import spend_charges, spend_records


def _records_in(start_us: int, end_us: int, team_ids: Collection[str] | None) -> list[ColumnElement[bool]]:
    conditions = [spend_records.c.charged_at_us >= start_us, spend_records.c.charged_at_us < end_us]
    if team_ids is not None:
        conditions.append(spend_records.c.team_id.in_(sorted(team_ids)))
    return conditions


class SpendRollups:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _rows(self, query: Select[Any]) -> list[Any]:
        async with self._engine.connect() as connection:
            return list((await connection.execute(query)).all())

    async def total_nanos(self, start_us: int, end_us: int, team_ids: Collection[str] | None = None) -> int:
        """Spend of every record charged in ``[start_us, end_us)``."""
        if team_ids is not None and not team_ids:
            return 0
        query = select(func.coalesce(func.sum(spend_records.c.cost_nanos), 0)).where(
            *_records_in(start_us, end_us, team_ids)
        )
        async with self._engine.connect() as connection:
            total = await connection.scalar(query)
        return int(total or 0)

    async def bucket_nanos(
        self, start_us: int, end_us: int, bucket_us: int, team_ids: Collection[str] | None = None
    ) -> dict[int, int]:
        """``{bucket index: spend}`` over buckets of ``bucket_us`` counted from ``start_us`` (empty ones absent).

        Callers group the buckets into calendar units (local days) themselves: a day is not always 24 hours.
        """
        if bucket_us <= 0:
            raise ValueError("bucket_us must be positive")
        if team_ids is not None and not team_ids:
            return {}
        # Inlined integers, not bound parameters: PostgreSQL only accepts the GROUP BY expression as the selected
        # one if the two are textually equal. Integer operands and a non-negative difference make // exact.
        offset = spend_records.c.charged_at_us - literal_column(str(int(start_us)), BigInteger)
        bucket = (offset // literal_column(str(int(bucket_us)), BigInteger)).label("bucket")
        query = (
            select(bucket, func.sum(spend_records.c.cost_nanos))
            .where(*_records_in(start_us, end_us, team_ids))
            .group_by(bucket)
        )
        return {int(index): int(total or 0) for index, total in await self._rows(query)}

    async def top(
        self,
        dimension: Dimension,
        start_us: int,
        end_us: int,
        limit: int = 5,
        team_ids: Collection[str] | None = None,
    ) -> list[tuple[str, int]]:
        """The ``limit`` biggest spenders of ``dimension`` in ``[start_us, end_us)``: ``[(id, nanos), ...]``.

        Entities are summed from their charges (what their budgets saw); models from the records.
        """
        if team_ids is not None and not team_ids:
            return []
        total = func.sum(spend_records.c.cost_nanos if dimension is Dimension.MODEL else spend_charges.c.cost_nanos)
        if dimension is Dimension.MODEL:
            group: Any = spend_records.c.model
            query = select(group, total.label("total")).where(*_records_in(start_us, end_us, team_ids))
        else:
            group = spend_charges.c.entity_id
            query = select(group, total.label("total")).where(
                spend_charges.c.entity_type == dimension.value,
                spend_charges.c.charged_at_us >= start_us,
                spend_charges.c.charged_at_us < end_us,
            )
            if team_ids is not None:
                scoped = select(spend_records.c.request_id).where(*_records_in(start_us, end_us, team_ids))
                query = query.where(spend_charges.c.request_id.in_(scoped))
        query = query.group_by(group).order_by(total.desc(), group).limit(limit)
        return [(str(name), int(nanos or 0)) for name, nanos in await self._rows(query)]
