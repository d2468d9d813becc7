"""Rollup-backed reads equal the raw ledger sums, on SQLite and PostgreSQL: counter loads of any period (partial
edge hours included), model windows, lifetime spend and the per-day report in any timezone offset."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgergate.domain.admission import CounterKey
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import SpendRecord
from ledgergate.domain.spend_filters import LogFilter
from ledgergate.domain.windows import FAR_FUTURE_S, LIFETIME, LIFETIME_PERIOD_START_S
from tests.builders import spend_record
from tests.storage.rollups.conftest import RollupDb

BASE_S = 1_767_225_600  # 2026-01-01T00:00Z
SPAN_US = 3 * 86_400 * 1_000_000
OPTIONAL_TARGETS = [(EntityType.TEAM, "t0"), (EntityType.USER, "u0"), (EntityType.TAG, "a"), (EntityType.TAG, "b")]
MODELS = ["m0", "m1"]
# Whole-hour, :30 and :45 offsets: the last two put every day boundary inside an hour.
OFFSETS_MIN = [0, 60, -300, 330, 345, -210]


@dataclass(frozen=True)
class Drawn:
    at_us: int
    key: str
    extra: frozenset[int]
    model: str
    cost_nanos: int
    prompt_tokens: int
    completion_tokens: int
    duplicate_of: int | None


drawn_records = st.lists(
    st.builds(
        Drawn,
        at_us=st.integers(0, SPAN_US),
        key=st.sampled_from(["k0", "k1"]),
        extra=st.frozensets(st.integers(0, len(OPTIONAL_TARGETS) - 1)),
        model=st.sampled_from(MODELS),
        cost_nanos=st.integers(0, 10**12),
        prompt_tokens=st.integers(0, 1000),
        completion_tokens=st.integers(0, 1000),
        duplicate_of=st.none() | st.integers(0, 25),
    ),
    max_size=25,
)
periods = st.lists(
    st.tuples(st.integers(-3600, 3 * 86_400), st.integers(1, 2 * 86_400)).map(
        lambda pair: (BASE_S + pair[0], BASE_S + pair[0] + pair[1])
    ),
    min_size=1,
    max_size=4,
)
EXAMPLES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _records(drawn: list[Drawn], ns: str) -> list[SpendRecord]:
    """Every entity and model carries the example's namespace: examples share one database."""
    records: list[SpendRecord] = []
    for index, item in enumerate(drawn):
        same = item.duplicate_of is not None and item.duplicate_of < index
        request_id = (
            records[item.duplicate_of].request_id if same and item.duplicate_of is not None else f"{ns}r{index}"
        )
        targets = [EntityRef(EntityType.KEY, f"{ns}{item.key}")]
        targets += [EntityRef(OPTIONAL_TARGETS[i][0], f"{ns}{OPTIONAL_TARGETS[i][1]}") for i in sorted(item.extra)]
        records.append(
            spend_record(
                request_id,
                cost_nanos=item.cost_nanos,
                charged_at_us=BASE_S * 1_000_000 + item.at_us,
                targets=tuple(targets),
                model=f"{ns}{item.model}",
                deployment_id="d",
                prompt_tokens=item.prompt_tokens,
                completion_tokens=item.completion_tokens,
                ended_at_us=BASE_S * 1_000_000 + item.at_us,
            )
        )
    return records


async def _write(db: RollupDb, records: list[SpendRecord]) -> list[SpendRecord]:
    """Append concurrently (duplicates land in one batch or in later ones); the records actually written."""
    written = await asyncio.gather(*(db.ledger.append(record) for record in records))
    return [record for record, new in zip(records, written, strict=True) if new]


def _raw(written: list[SpendRecord], entity: EntityRef, start_us: int, end_us: int, model: str | None) -> int:
    return sum(
        record.cost_nanos
        for record in written
        if entity in record.targets
        and start_us <= record.charged_at_us < end_us
        and (model is None or record.model == model)
    )


@given(drawn=drawn_records, chosen=periods)
@EXAMPLES
async def test_rollups_window_sums_equal_raw_sums(
    rollup_db: RollupDb, drawn: list[Drawn], chosen: list[tuple[int, int]]
) -> None:
    """A counter loaded from whole-hour rollups plus raw edge hours equals the raw sum of its period, for any
    period bounds, model windows and duplicate request ids (a duplicate adds nothing to the rollups)."""
    ns = f"x{uuid.uuid4().hex[:10]}"
    written = await _write(rollup_db, _records(drawn, ns))
    entities = [
        EntityRef(EntityType.KEY, f"{ns}k0"),
        EntityRef(EntityType.TAG, f"{ns}a"),
        EntityRef(EntityType.TEAM, f"{ns}t0"),
    ]
    keys: list[CounterKey] = []
    ends: list[int] = []
    expected: list[int] = []
    for entity in entities:
        for start_s, end_s in chosen:
            for model in (None, f"{ns}m1"):
                window = "1d" if model is None else f"1d@{model}"
                keys.append(CounterKey(entity.type.value, entity.id, window, start_s))
                ends.append(end_s)
                expected.append(_raw(written, entity, start_s * 1_000_000, end_s * 1_000_000, model))
        keys.append(CounterKey(entity.type.value, entity.id, LIFETIME, LIFETIME_PERIOD_START_S))
        ends.append(FAR_FUTURE_S)
        expected.append(_raw(written, entity, 0, FAR_FUTURE_S * 1_000_000, None))
    assert await rollup_db.ledger.window_sums(keys, ends) == expected
    for entity in entities:
        assert await rollup_db.ledger.lifetime_spend(entity) == _raw(written, entity, 0, FAR_FUTURE_S * 1_000_000, None)


@given(
    drawn=drawn_records,
    offset_min=st.sampled_from(OFFSETS_MIN),
    group_by=st.sampled_from(["key", "team", "user", "tag", "model"]),
    model_filter=st.booleans(),
)
@EXAMPLES
async def test_rollups_report_equals_raw_report(
    rollup_db: RollupDb, drawn: list[Drawn], offset_min: int, group_by: str, model_filter: bool
) -> None:
    """The per-day report equals the raw per-day sums in every timezone offset (from the rollups when days
    start on whole hours, from the raw rows otherwise), grouped by entity or by model."""
    ns = f"x{uuid.uuid4().hex[:10]}"
    written = await _write(rollup_db, _records(drawn, ns))
    bounds_us = [(BASE_S - offset_min * 60 + day * 86_400) * 1_000_000 for day in range(5)]
    model = f"{ns}m0" if model_filter else None
    rows = await rollup_db.queries.report(group_by, bounds_us, LogFilter(model=model))
    got = {
        (row.day, row.entity_id): (row.cost_nanos, row.requests, row.prompt_tokens, row.completion_tokens)
        for row in rows
        if row.entity_id.startswith(ns)
    }
    expected: dict[tuple[int, str], tuple[int, int, int, int]] = {}
    for record in written:
        if model is not None and record.model != model:
            continue
        days = [i for i in range(4) if bounds_us[i] <= record.charged_at_us < bounds_us[i + 1]]
        if not days:
            continue
        if group_by == "model":
            names = [record.model]
        else:
            names = [target.id for target in record.targets if target.type.value == group_by]
        for name in names:
            cost, requests, prompt, completion = expected.get((days[0], name), (0, 0, 0, 0))
            expected[(days[0], name)] = (
                cost + record.cost_nanos,
                requests + 1,
                prompt + record.prompt_tokens,
                completion + record.completion_tokens,
            )
    assert got == expected
