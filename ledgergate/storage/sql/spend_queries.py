"""Read side of the ledger: spend logs with filters, adjustments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.storage.sql.tables import spend_adjustments, spend_charges, spend_records


@dataclass(frozen=True, slots=True)
class LogFilter:
    key_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    customer_id: str | None = None
    tag: str | None = None
    model: str | None = None
    start_us: int | None = None
    end_us: int | None = None
    offset: int = 0
    limit: int = 100


def _filtered(query: Select[Any], flt: LogFilter) -> Select[Any]:
    columns = spend_records.c
    for column, value in (
        (columns.key_id, flt.key_id),
        (columns.user_id, flt.user_id),
        (columns.team_id, flt.team_id),
        (columns.organization_id, flt.organization_id),
        (columns.customer_id, flt.customer_id),
        (columns.model, flt.model),
    ):
        if value is not None:
            query = query.where(column == value)
    if flt.tag is not None:
        tagged = select(spend_charges.c.request_id).where(
            spend_charges.c.entity_type == "tag", spend_charges.c.entity_id == flt.tag
        )
        query = query.where(columns.request_id.in_(tagged))
    if flt.start_us is not None:
        query = query.where(columns.charged_at_us >= flt.start_us)
    if flt.end_us is not None:
        query = query.where(columns.charged_at_us < flt.end_us)
    return query


class SpendQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def logs(self, flt: LogFilter) -> list[dict[str, Any]]:
        query = _filtered(select(spend_records), flt).order_by(
            spend_records.c.charged_at_us.desc(), spend_records.c.request_id
        )
        query = query.offset(flt.offset).limit(flt.limit)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [{**row, "tags": orjson.loads(row["tags"])} for row in rows]

    async def adjustments(
        self, entity_type: str | None = None, entity_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        query = select(spend_adjustments).order_by(spend_adjustments.c.created_at_us.desc()).limit(limit)
        if entity_type is not None:
            query = query.where(spend_adjustments.c.entity_type == entity_type)
        if entity_id is not None:
            query = query.where(spend_adjustments.c.entity_id == entity_id)
        async with self._engine.connect() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings().all()]

    async def total_ledger_nanos(self) -> int:
        """Sum of every record: the number the sum over keys must equal."""

        async with self._engine.connect() as connection:
            total = await connection.scalar(select(func.coalesce(func.sum(spend_records.c.cost_nanos), 0)))
        return int(total or 0)
