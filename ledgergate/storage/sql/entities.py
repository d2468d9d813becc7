"""SQL persistence of entities: one table, JSON for the fields no query filters on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.charging import EntityType
from ledgergate.domain.durations import parse_duration
from ledgergate.domain.entities import Entity
from ledgergate.domain.errors import EntityConflict
from ledgergate.domain.windows import Window
from ledgergate.storage.sql.tables import entities


def _windows_to_json(windows: Sequence[Window]) -> list[dict[str, Any]]:
    rows = []
    for w in windows:
        row = {"budget_duration": w.duration.text if w.duration else None, "max_budget_nanos": w.max_budget_nanos}
        if w.model is not None:  # absent, not null, for windows over every model: rows written before stay equal
            row["model"] = w.model
        rows.append(row)
    return rows


def _window_from_json(item: dict[str, Any]) -> Window:
    duration = parse_duration(item["budget_duration"]) if item["budget_duration"] else None
    return Window(duration, item["max_budget_nanos"], item.get("model"))


def entity_row(entity: Entity) -> dict[str, Any]:
    data = {
        "primary_window": _windows_to_json([entity.primary_window])[0] if entity.primary_window else None,
        "budget_limits": _windows_to_json(entity.budget_limits),
        "soft_budget_nanos": entity.soft_budget_nanos,
        "tags": list(entity.tags),
        "models": list(entity.models),
        "metadata": dict(entity.metadata),
        "extra": dict(entity.extra),
    }
    return {
        "entity_type": entity.type.value,
        "entity_id": entity.id,
        "alias": entity.alias,
        "user_id": entity.user_id,
        "team_id": entity.team_id,
        "organization_id": entity.organization_id,
        "budget_id": entity.budget_id,
        "blocked": entity.blocked,
        "expires_at_s": entity.expires_at_s,
        "data": orjson.dumps(data).decode(),
        "created_at_s": entity.created_at_s,
        "updated_at_s": entity.updated_at_s,
        "version": entity.version,
    }


def entity_from_row(row: RowMapping) -> Entity:
    data = orjson.loads(row["data"])
    return Entity(
        type=EntityType(row["entity_type"]),
        id=row["entity_id"],
        primary_window=_window_from_json(data["primary_window"]) if data.get("primary_window") else None,
        budget_limits=tuple(_window_from_json(item) for item in data.get("budget_limits", ())),
        soft_budget_nanos=data.get("soft_budget_nanos"),
        budget_id=row["budget_id"],
        alias=row["alias"],
        user_id=row["user_id"],
        team_id=row["team_id"],
        organization_id=row["organization_id"],
        blocked=bool(row["blocked"]),
        expires_at_s=row["expires_at_s"],
        tags=tuple(data.get("tags", ())),
        models=tuple(data.get("models", ())),
        metadata=data.get("metadata", {}),
        extra=data.get("extra", {}),
        created_at_s=row["created_at_s"],
        updated_at_s=row["updated_at_s"],
        version=row["version"],
    )


class SqlEntityStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, entity_type: EntityType, entity_id: str) -> Entity | None:
        async with self._engine.connect() as connection:
            result = await connection.execute(
                select(entities).where(entities.c.entity_type == entity_type.value, entities.c.entity_id == entity_id)
            )
            row = result.mappings().first()
        return entity_from_row(row) if row is not None else None

    async def insert(self, entity: Entity) -> None:
        async with self._engine.begin() as connection:
            exists = await connection.scalar(
                select(entities.c.version).where(
                    entities.c.entity_type == entity.type.value, entities.c.entity_id == entity.id
                )
            )
            if exists is not None:
                raise EntityConflict(f"{entity.type.value} {entity.id!r} already exists")
            await connection.execute(entities.insert(), entity_row(entity))

    async def replace(self, entity: Entity, expected_version: int) -> None:
        """Write ``entity`` if the stored one still has ``expected_version`` (optimistic concurrency)."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(entities)
                .where(
                    entities.c.entity_type == entity.type.value,
                    entities.c.entity_id == entity.id,
                    entities.c.version == expected_version,
                )
                .values(**entity_row(entity))
            )
            if result.rowcount != 1:
                raise EntityConflict(f"{entity.type.value} {entity.id!r} changed concurrently; retry")

    async def delete(self, entity_type: EntityType, entity_id: str) -> bool:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(entities).where(entities.c.entity_type == entity_type.value, entities.c.entity_id == entity_id)
            )
        return bool(result.rowcount)

    async def list(
        self,
        entity_type: EntityType,
        *,
        user_id: str | None = None,
        team_id: str | None = None,
        organization_id: str | None = None,
        budget_id: str | None = None,
        alias: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[Entity]:
        query = select(entities).where(entities.c.entity_type == entity_type.value)
        if user_id is not None:
            query = query.where(entities.c.user_id == user_id)
        if team_id is not None:
            query = query.where(entities.c.team_id == team_id)
        if organization_id is not None:
            query = query.where(entities.c.organization_id == organization_id)
        if budget_id is not None:
            query = query.where(entities.c.budget_id == budget_id)
        if alias is not None:
            query = query.where(entities.c.alias == alias)
        query = query.order_by(entities.c.created_at_s, entities.c.entity_id).offset(offset).limit(limit)
        async with self._engine.connect() as connection:
            result = await connection.execute(query)
            return [entity_from_row(row) for row in result.mappings().all()]
