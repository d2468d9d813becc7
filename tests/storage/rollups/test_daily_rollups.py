"""Daily rollups equal the raw ledger per local day, on SQLite and PostgreSQL: kept live in any timezone (DST days
and :30 offsets included), filled exactly from the hourly rows while writers race the backfill (also by two
instances at once, and after a timezone change made the rows stale), and reports read them for whole days."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.ledger import SpendRecord
from ledgergate.domain.spend_filters import LogFilter
from ledgergate.storage.sql.engine import MIGRATIONS_DIR, upgrade_schema
from ledgergate.storage.sql.ledger import SqlLedger
from ledgergate.storage.sql.ledger_rows import record_row
from ledgergate.storage.sql.rollup_rows import LocalDays
from ledgergate.storage.sql.spend_queries import SpendQueries
from ledgergate.storage.sql.tables import spend_charges, spend_records
from tests.storage.rollups.conftest import LedgerDb
from tests.storage.rollups.daily_helpers import (
    append_all,
    coverage,
    daily_rows,
    expected_daily,
    expected_report,
    local_day_bounds_us,
    local_day_start_s,
    random_records,
)

DAY_S = 86_400
# Each span holds a DST change of its zone (Lord Howe moves by 30 minutes) or a :30 offset.
ZONES = [
    ("UTC", "2026-03-06"),
    ("America/New_York", "2026-03-06"),
    ("Europe/Berlin", "2026-10-23"),
    ("Asia/Kolkata", "2026-03-06"),
    ("Australia/Lord_Howe", "2026-04-03"),
]
GROUPS = ["key", "team", "user", "tag", "model"]
EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _start_s(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


async def _report_matches(
    engine: AsyncEngine, written: list[SpendRecord], bounds_us: list[int], group_by: str, model: str | None, ns: str
) -> None:
    rows = await SpendQueries(engine).report(group_by, bounds_us, LogFilter(model=model))
    got = {
        (row.day, row.entity_id): (row.cost_nanos, row.requests, row.prompt_tokens, row.completion_tokens)
        for row in rows
        if row.entity_id.startswith(ns)
    }
    assert got == expected_report(written, bounds_us, group_by, model)


@pytest.mark.parametrize(("timezone", "first_day"), ZONES)
@given(rng=st.randoms(use_true_random=False), count=st.integers(0, 30), group_by=st.sampled_from(GROUPS))
@EXAMPLES
async def test_daily_rollups_kept_live_equal_raw_sums_per_local_day(
    ledger_db: LedgerDb, timezone: str, first_day: str, rng: random.Random, count: int, group_by: str
) -> None:
    """Every record inserted adds to its local day's row of each target and of the whole ledger (a duplicate
    request id adds nothing); the report over whole days (read from them) and over a range starting mid-day
    (that day read as before) equals the raw per-day sums."""
    ledger = await ledger_db.shared(timezone)
    tz = ZoneInfo(timezone)
    ns = f"x{uuid.uuid4().hex[:10]}"
    start_s = _start_s(first_day)
    written = await append_all(ledger, random_records(rng, ns, count, start_s, 4 * DAY_S))
    assert await coverage(ledger_db.engine) == {timezone: "complete"}  # an empty ledger has nothing to fill
    assert await daily_rows(ledger_db.engine, timezone, ns) == expected_daily(written, tz)
    bounds_us = local_day_bounds_us(start_s, 5, tz)
    model = f"{ns}m0" if rng.random() < 0.3 else None
    await _report_matches(ledger_db.engine, written, bounds_us, group_by, model, ns)
    mid_day = [bounds_us[0] + 5 * 3_600_000_000 + 1_800_000_000, *bounds_us[1:]]
    await _report_matches(ledger_db.engine, written, mid_day, group_by, model, ns)


@given(instants_s=st.lists(st.integers(_start_s("2026-03-01"), _start_s("2026-04-15")), max_size=60))
@settings(max_examples=50, deadline=None)
def test_local_days_cache_agrees_with_the_calendar_in_any_order(instants_s: list[int]) -> None:
    """The writer's cached day bounds give every instant its calendar day, whatever order instants come in."""
    for timezone in ("America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"):
        tz = ZoneInfo(timezone)
        days = LocalDays(tz)
        for instant_s in instants_s:
            assert days.day_start_s(instant_s * 1_000_000 + 999_999) == local_day_start_s(instant_s * 1_000_000, tz)


async def _race(ledgers: list[SqlLedger], batches: list[list[SpendRecord]]) -> list[SpendRecord]:
    """Append the batches one after another, alternating ledgers, yielding between them: the backfill runs in
    between (and, on PostgreSQL, alongside)."""
    written: list[SpendRecord] = []
    for index, batch in enumerate(batches):
        ledger = ledgers[index % len(ledgers)]
        written += await append_all(ledger, batch)
        await asyncio.sleep(0)
    return written


async def test_daily_backfill_racing_live_writes_counts_every_record_once(ledger_db: LedgerDb) -> None:
    """History written while another timezone was kept is filled from the hourly rows while new records (late
    ones for old days, and duplicates) are appended: every record lands once. Switching back makes the first
    timezone's rows stale; two instances starting together top them up, again exactly."""
    rng = random.Random(11)
    ns = f"x{uuid.uuid4().hex[:10]}"
    start_s, span_s = _start_s("2026-03-03"), 9 * DAY_S
    engine = ledger_db.engine
    utc = await ledger_db.ledger("UTC")
    written = await append_all(utc, random_records(rng, ns, 300, start_s, span_s))
    await ledger_db.close(utc)

    new_york = await ledger_db.ledger("America/New_York")
    batches = [random_records(rng, ns, 15, start_s, span_s, earlier=written)]
    for _ in range(11):
        batches.append(random_records(rng, ns, 15, start_s, span_s, earlier=[*written, *batches[-1]]))
    written += await _race([new_york], batches)
    bounds_us = local_day_bounds_us(start_s, 10, ZoneInfo("America/New_York"))
    await _report_matches(engine, written, bounds_us, "key", None, ns)  # exact whether filled yet or not
    await new_york.daily_rollups_filled()
    assert await coverage(engine) == {"America/New_York": "complete"}
    assert await daily_rows(engine, "America/New_York", ns) == expected_daily(written, ZoneInfo("America/New_York"))
    await _report_matches(engine, written, bounds_us, "team", None, ns)
    await ledger_db.close(new_york)

    first, second = await asyncio.gather(
        ledger_db.ledger("UTC", own_engine=True), ledger_db.ledger("UTC", own_engine=True)
    )
    batches = [random_records(rng, ns, 15, start_s, span_s, earlier=written) for _ in range(8)]
    written += await _race([first, second], batches)
    await asyncio.gather(first.daily_rollups_filled(), second.daily_rollups_filled())
    assert await coverage(engine) == {"UTC": "complete"}
    assert await daily_rows(engine, "UTC", ns) == expected_daily(written, ZoneInfo("UTC"))
    await _report_matches(engine, written, local_day_bounds_us(start_s, 10, ZoneInfo("UTC")), "tag", None, ns)


async def test_daily_rollups_unused_where_hours_straddle_days_of_existing_history(ledger_db: LedgerDb) -> None:
    """History in hourly rows cannot be split into days starting at :30, so such a timezone's daily rows are
    never read (nor kept after a restart); its reports stay exact from the other rows."""
    rng = random.Random(3)
    ns = f"x{uuid.uuid4().hex[:10]}"
    start_s = _start_s("2026-03-03")
    utc = await ledger_db.ledger("UTC")
    written = await append_all(utc, random_records(rng, ns, 80, start_s, 3 * DAY_S))
    await ledger_db.close(utc)
    kolkata = await ledger_db.ledger("Asia/Kolkata")
    written += await append_all(kolkata, random_records(rng, ns, 20, start_s, 3 * DAY_S, earlier=written))
    await kolkata.daily_rollups_filled()
    assert await coverage(ledger_db.engine) == {"Asia/Kolkata": "unsupported"}
    await ledger_db.close(kolkata)
    kept = await daily_rows(ledger_db.engine, "Asia/Kolkata", ns)
    restarted = await ledger_db.ledger("Asia/Kolkata")
    written += await append_all(restarted, random_records(rng, ns, 20, start_s, 3 * DAY_S, earlier=written))
    assert await daily_rows(ledger_db.engine, "Asia/Kolkata", ns) == kept
    bounds_us = local_day_bounds_us(start_s, 4, ZoneInfo("Asia/Kolkata"))
    await _report_matches(ledger_db.engine, written, bounds_us, "key", None, ns)


async def _downgrade_to(engine: AsyncEngine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    def _run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_run)


async def test_upgrade_fills_daily_rollups_of_a_ledger_written_before_them(ledger_db: LedgerDb) -> None:
    """A ledger written before daily rollups existed (schema 0004: records and charges only) gets hourly rows
    from migration 0005 and, once a gateway starts, daily rows in its timezone equal to the raw sums."""
    engine = ledger_db.engine
    await _downgrade_to(engine, "0004")
    rng = random.Random(8)
    ns = f"x{uuid.uuid4().hex[:10]}"
    records = {record.request_id: record for record in random_records(rng, ns, 120, _start_s("2026-10-20"), 8 * DAY_S)}
    async with engine.begin() as connection:
        await connection.execute(insert(spend_records), [record_row(record) for record in records.values()])
        await connection.execute(
            insert(spend_charges),
            [
                {
                    "request_id": record.request_id,
                    "entity_type": entity_type,
                    "entity_id": entity_id,
                    "cost_nanos": record.cost_nanos,
                    "charged_at_us": record.charged_at_us,
                }
                for record in records.values()
                for entity_type, entity_id in {(target.type.value, target.id) for target in record.targets}
            ],
        )
    await upgrade_schema(engine)
    berlin = await ledger_db.ledger("Europe/Berlin")
    await berlin.daily_rollups_filled()
    assert await coverage(engine) == {"Europe/Berlin": "complete"}
    expected = expected_daily(list(records.values()), ZoneInfo("Europe/Berlin"))
    assert await daily_rows(engine, "Europe/Berlin", ns) == expected
