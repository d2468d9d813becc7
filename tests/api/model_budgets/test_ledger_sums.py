"""``SqlLedger.window_sums`` of a model window, on SQLite and on PostgreSQL: the counter a restart (or an expired
hold) rebuilds holds only the charges of requests for the window's model, plus the window's own adjustments."""

from __future__ import annotations

import asyncio

from ledgergate.domain.admission import CounterKey
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.durations import parse_duration
from ledgergate.domain.ledger import Adjustment, SpendRecord
from ledgergate.domain.windows import Window, split_window_key
from ledgergate.storage.sql.ledger import SqlLedger
from tests.builders import spend_record

HOUR_S = 1_767_225_600  # 2026-01-01T00:00Z
KEY = EntityRef(EntityType.KEY, "k1")
TEAM = EntityRef(EntityType.TEAM, "t1")
# As long as a spend record's model may be: a model window's key (and so its adjustments) must still fit.
LONG_MODEL = "bedrock/" + "a" * 247


def _record(request_id: str, model: str, cost_nanos: int, at_us: int) -> SpendRecord:
    return spend_record(
        request_id,
        cost_nanos=cost_nanos,
        charged_at_us=at_us,
        targets=(KEY, TEAM),
        model=model,
        deployment_id="deployment-0",
        prompt_tokens=1,
        completion_tokens=1,
        team_id=TEAM.id,
    )


def _adjustment(adjustment_id: str, window: str, delta: int) -> Adjustment:
    return Adjustment(
        adjustment_id=adjustment_id,
        entity=KEY,
        window=window,
        period_start_s=HOUR_S,
        previous_nanos=1_000,
        new_nanos=1_000 + delta,
        actor="admin",
        reason="test",
        created_at_us=HOUR_S * 1_000_000,
    )


def test_model_window_key_carries_its_model() -> None:
    """Two windows of one period but different scopes have different keys (own counters, no false duplicate);
    the ledger reads the model back from the key, whatever characters the model name has."""
    day = parse_duration("24h")
    keys = [Window(day, 1).key, Window(day, 1, "gpt-4o").key, Window(day, 1, "a@b/c:d").key, Window(None, 1, "m").key]
    assert keys == ["1d", "1d@gpt-4o", "1d@a@b/c:d", "lifetime@m"]
    assert [split_window_key(key) for key in keys] == [
        ("1d", None),
        ("1d", "gpt-4o"),
        ("1d", "a@b/c:d"),
        ("lifetime", "m"),
    ]


async def test_model_window_sums_count_only_the_model(sql_ledger: SqlLedger) -> None:
    """Charges of other models and of other periods are left out of a model window's sum; the entity's own
    window counts every model; adjustments belong to the exact window (model included) they were made on."""
    start_us = HOUR_S * 1_000_000
    await asyncio.gather(
        sql_ledger.append(_record("a1", "gpt-4o", 10, start_us)),
        sql_ledger.append(_record("a2", "gpt-4o", 100, start_us + 3600 * 1_000_000 - 1)),
        sql_ledger.append(_record("a-next-hour", "gpt-4o", 7, start_us + 3600 * 1_000_000)),
        sql_ledger.append(_record("b1", "gpt-4o-mini", 1_000, start_us + 5)),
        sql_ledger.append(_record("long1", LONG_MODEL, 10_000, start_us + 6)),
    )
    long_window = Window(parse_duration("1h"), 1, LONG_MODEL).key
    await sql_ledger.add_adjustment(_adjustment("adj-a", "1h@gpt-4o", -30))
    await sql_ledger.add_adjustment(_adjustment("adj-long", long_window, -4))
    await sql_ledger.add_adjustment(_adjustment("adj-general", "1h", -5))
    keys = [
        CounterKey("key", "k1", "1h@gpt-4o", HOUR_S),
        CounterKey("key", "k1", "1h@gpt-4o-mini", HOUR_S),
        CounterKey("key", "k1", long_window, HOUR_S),
        CounterKey("key", "k1", "1h", HOUR_S),
        CounterKey("team", "t1", "1h@gpt-4o", HOUR_S),
        CounterKey("key", "k1", "1h@unused-model", HOUR_S),
    ]
    sums = await sql_ledger.window_sums(keys, [HOUR_S + 3600] * len(keys))
    assert sums == [110 - 30, 1_000, 10_000 - 4, 11_110 - 5, 110, 0]
