"""The dashboard's ledger rollups (``storage/sql/spend_rollups.py``) on SQLite and on PostgreSQL.

The overview's numbers must be the ledger's: half-open time ranges (a record on a boundary counts once), exact
integer buckets on both dialects, and a team admin's scope never leaking another team's spend.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import SpendRecord
from ledgergate.domain.spend_filters import Dimension
from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.ledger import SqlLedger
from ledgergate.storage.sql.spend_rollups import SpendRollups
from tests.builders import spend_record
from tests.storage.contract.services import create_pg_schema, drop_pg_schema, pg_engine

T0_US = 1_700_000_000 * 1_000_000
HOUR_US = 3600 * 1_000_000


def _record(at_us: int, nanos: int, key: str, team: str | None, model: str, tags: tuple[str, ...] = ()) -> SpendRecord:
    targets = [EntityRef(EntityType.KEY, key)]
    if team:
        targets.append(EntityRef(EntityType.TEAM, team))
    targets += [EntityRef(EntityType.TAG, tag) for tag in tags]
    return spend_record(
        uuid.uuid4().hex,
        cost_nanos=nanos,
        charged_at_us=at_us,
        targets=tuple(targets),
        key_id=key,
        model=model,
        deployment_id=model,
        prompt_tokens=1,
        completion_tokens=1,
        ended_at_us=at_us,
        team_id=team,
        tags=tags,
    )


RECORDS = (
    _record(T0_US, 100, "k1", "red", "gpt-a", ("prod",)),
    _record(T0_US + HOUR_US - 1, 200, "k1", "red", "gpt-b", ("prod",)),
    _record(T0_US + HOUR_US, 400, "k2", "blue", "gpt-a", ("prod", "batch")),  # on the boundary: second hour
    _record(T0_US + 2 * HOUR_US + 5, 800, "k3", None, "gpt-a"),
    _record(T0_US - 1, 1600, "k1", "red", "gpt-a"),  # before the range
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def rollups(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SpendRollups]:
    schema = None
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    else:
        schema = await create_pg_schema()
        engine = pg_engine(schema)
    ledger = SqlLedger(engine)
    try:
        await upgrade_schema(engine)
        await ledger.start()
        for record in RECORDS:
            assert await ledger.append(record)
        yield SpendRollups(engine)
    finally:
        await ledger.close()
        await engine.dispose()
        if schema is not None:
            await drop_pg_schema(schema)


async def test_rollups_total_is_half_open_and_scoped(rollups: SpendRollups) -> None:
    """Totals count each record once at range boundaries, and a team scope sees only its teams (none: nothing)."""
    end = T0_US + 3 * HOUR_US
    assert await rollups.total_nanos(T0_US, end) == 1500
    assert await rollups.total_nanos(T0_US, T0_US + HOUR_US) == 300
    assert await rollups.total_nanos(T0_US + HOUR_US, end) == 1200
    assert await rollups.total_nanos(T0_US, end, team_ids={"red"}) == 300
    assert await rollups.total_nanos(T0_US, end, team_ids=set()) == 0


async def test_rollups_buckets_are_exact_integers(rollups: SpendRollups) -> None:
    """Hour buckets from the range start on both dialects: the boundary record opens the next bucket."""
    buckets = await rollups.bucket_nanos(T0_US, T0_US + 3 * HOUR_US, HOUR_US)
    assert buckets == {0: 300, 1: 400, 2: 800}
    assert await rollups.bucket_nanos(T0_US, T0_US + 3 * HOUR_US, HOUR_US, team_ids={"blue"}) == {1: 400}


async def test_rollups_top_spenders_per_dimension(rollups: SpendRollups) -> None:
    """Top-N by key, team, tag and model, biggest first, limited, and restricted by team scope."""
    end = T0_US + 3 * HOUR_US
    assert await rollups.top(Dimension.KEY, T0_US, end) == [("k3", 800), ("k2", 400), ("k1", 300)]
    assert await rollups.top(Dimension.KEY, T0_US, end, limit=1) == [("k3", 800)]
    assert await rollups.top(Dimension.TEAM, T0_US, end) == [("blue", 400), ("red", 300)]
    assert await rollups.top(Dimension.TAG, T0_US, end) == [("prod", 700), ("batch", 400)]
    assert await rollups.top(Dimension.MODEL, T0_US, end) == [("gpt-a", 1300), ("gpt-b", 200)]
    assert await rollups.top(Dimension.TAG, T0_US, end, team_ids={"red"}) == [("prod", 300)]
    assert await rollups.top(Dimension.MODEL, T0_US, end, team_ids={"red"}) == [("gpt-b", 200), ("gpt-a", 100)]
