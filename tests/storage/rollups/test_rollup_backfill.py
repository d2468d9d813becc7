"""The migration that creates the rollups backfills them from the ledger already written, on both dialects."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.storage.sql.engine import MIGRATIONS_DIR, create_engine, upgrade_schema
from ledgergate.storage.sql.tables import spend_charges, spend_records, spend_rollups
from tests.storage.contract.services import create_pg_schema, drop_pg_schema, pg_engine

HOUR_US = 3_600_000_000
BASE_US = 1_767_225_600 * 1_000_000


async def _upgrade_to(engine: AsyncEngine, revision: str) -> None:
    def _run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_run)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_rollup_migration_backfills_existing_ledger(dialect: str, tmp_path: Path) -> None:
    """Records written before the rollups existed are in them after the upgrade, exactly (per hour, entity and
    model, plus the whole-ledger rows): an upgraded gateway's counters and reports do not lose history."""
    schema = None
    if dialect == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    else:
        schema = await create_pg_schema()
        engine = pg_engine(schema)
    try:
        await _upgrade_to(engine, "0004")
        records = [
            {
                "request_id": f"r{i}",
                "key_id": f"k{i % 2}",
                "tags": "[]",
                "model": f"m{i % 3}",
                "deployment_id": "d",
                "route": "/v1/chat/completions",
                "prompt_tokens": i,
                "completion_tokens": 2 * i,
                "cost_nanos": 1000 + i,
                "status": "success",
                "charged_at_us": BASE_US + i * HOUR_US // 3,
                "ended_at_us": BASE_US + i * HOUR_US // 3,
            }
            for i in range(12)
        ]
        charges = [
            {
                "request_id": r["request_id"],
                "entity_type": entity_type,
                "entity_id": entity_id,
                "cost_nanos": r["cost_nanos"],
                "charged_at_us": r["charged_at_us"],
            }
            for r in records
            for entity_type, entity_id in (("key", r["key_id"]), ("team", "t"))
        ]
        async with engine.begin() as connection:
            await connection.execute(insert(spend_records), records)
            await connection.execute(insert(spend_charges), charges)
        await upgrade_schema(engine)
        expected: dict[tuple[str, str, str, int], list[int]] = {}
        for r in records:
            hour_s = r["charged_at_us"] // HOUR_US * 3600
            for entity_type, entity_id in (("key", r["key_id"]), ("team", "t"), ("record", "*")):
                sums = expected.setdefault((entity_type, entity_id, r["model"], hour_s), [0, 0, 0, 0])
                for index, value in enumerate((r["cost_nanos"], 1, r["prompt_tokens"], r["completion_tokens"])):
                    sums[index] += value
        async with engine.connect() as connection:
            rows = (await connection.execute(select(spend_rollups))).all()
        got = {
            (row.entity_type, row.entity_id, row.model, row.hour_start_s): [
                row.cost_nanos,
                row.requests,
                row.prompt_tokens,
                row.completion_tokens,
            ]
            for row in rows
        }
        assert got == expected
    finally:
        await engine.dispose()
        if schema is not None:
            await drop_pg_schema(schema)
