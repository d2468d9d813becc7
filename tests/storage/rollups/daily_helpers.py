"""Random spend records and the reference sums the daily rollups and reports must equal, computed from the
records themselves with the standard library's calendar (not the gateway's day code)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import SpendRecord
from ledgergate.storage.sql.ledger import SqlLedger
from ledgergate.storage.sql.tables import rollup_coverage, spend_daily_rollups
from tests.builders import spend_record

Sums = tuple[int, int, int, int]  # cost_nanos, requests, prompt_tokens, completion_tokens
_OPTIONAL = [(EntityType.TEAM, "t0"), (EntityType.USER, "u0"), (EntityType.TAG, "a"), (EntityType.TAG, "b")]


def random_records(
    rng: random.Random, ns: str, count: int, start_s: int, span_s: int, earlier: Sequence[SpendRecord] = ()
) -> list[SpendRecord]:
    """``count`` records charged in ``[start_s, start_s + span_s)``; some reuse the request id of an earlier one
    (of ``earlier`` or of these, with other targets), which must add nothing."""
    records: list[SpendRecord] = []
    for index in range(count):
        at_us = start_s * 1_000_000 + rng.randrange(span_s * 1_000_000)
        request_id = f"{ns}r{len(earlier)}_{index}"
        if (records or earlier) and rng.random() < 0.1:
            request_id = rng.choice([*earlier, *records]).request_id
        key = f"{ns}k{rng.randrange(3)}"
        targets = [EntityRef(EntityType.KEY, key)]
        targets += [EntityRef(kind, f"{ns}{name}") for kind, name in _OPTIONAL if rng.random() < 0.5]
        records.append(
            spend_record(
                request_id,
                key_id=key,
                targets=tuple(targets),
                model=f"{ns}m{rng.randrange(2)}",  # the random draws stay in this order (seeded histories)
                deployment_id="d",
                prompt_tokens=rng.randrange(1000),
                completion_tokens=rng.randrange(1000),
                cost_nanos=rng.randrange(10**12),
                charged_at_us=at_us,
                ended_at_us=at_us,
            )
        )
    return records


async def append_all(ledger: SqlLedger, records: list[SpendRecord]) -> list[SpendRecord]:
    """Append concurrently; the records actually written (the first of each request id to commit)."""
    written = await asyncio.gather(*(ledger.append(record) for record in records))
    return [record for record, new in zip(records, written, strict=True) if new]


def local_day_start_s(at_us: int, tz: ZoneInfo) -> int:
    day = datetime.fromtimestamp(at_us // 1_000_000, tz).date()
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def local_day_bounds_us(first_at_s: int, days: int, tz: ZoneInfo) -> list[int]:
    """Midnights of ``days`` consecutive local days from the one holding ``first_at_s``, and the one after."""
    first = datetime.fromtimestamp(first_at_s, tz).date()
    return [
        int(datetime.combine(first + timedelta(days=i), datetime.min.time(), tzinfo=tz).timestamp()) * 1_000_000
        for i in range(days + 1)
    ]


def _add(into: dict[Any, Sums], key: Any, record: SpendRecord) -> None:
    cost, requests, prompt, completion = into.get(key, (0, 0, 0, 0))
    into[key] = (
        cost + record.cost_nanos,
        requests + 1,
        prompt + record.prompt_tokens,
        completion + record.completion_tokens,
    )


def expected_daily(written: list[SpendRecord], tz: ZoneInfo) -> dict[tuple[str, str, str, int], Sums]:
    """Per (entity type, id, model, local day start): each target once, plus the whole-ledger row."""
    sums: dict[tuple[str, str, str, int], Sums] = {}
    for record in written:
        day_s = local_day_start_s(record.charged_at_us, tz)
        targets = {(target.type.value, target.id) for target in record.targets} | {("record", "*")}
        for entity_type, entity_id in targets:
            _add(sums, (entity_type, entity_id, record.model, day_s), record)
    return sums


def expected_report(
    written: list[SpendRecord], bounds_us: list[int], group_by: str, model: str | None
) -> dict[tuple[int, str], Sums]:
    sums: dict[tuple[int, str], Sums] = {}
    for record in written:
        if model is not None and record.model != model:
            continue
        days = [i for i in range(len(bounds_us) - 1) if bounds_us[i] <= record.charged_at_us < bounds_us[i + 1]]
        if not days:
            continue
        if group_by == "model":
            names = {record.model}
        else:
            names = {target.id for target in record.targets if target.type.value == group_by}
        for name in names:
            _add(sums, (days[0], name), record)
    return sums


async def daily_rows(engine: AsyncEngine, timezone: str, ns: str) -> dict[tuple[str, str, str, int], Sums]:
    """The daily rollup rows of one test (its entities and models carry ``ns``)."""
    daily = spend_daily_rollups.c
    async with engine.connect() as connection:
        rows = (await connection.execute(select(spend_daily_rollups).where(daily.timezone == timezone))).all()
    return {
        (row.entity_type, row.entity_id, row.model, row.day_start_s): (
            row.cost_nanos,
            row.requests,
            row.prompt_tokens,
            row.completion_tokens,
        )
        for row in rows
        if row.model.startswith(ns)
    }


async def coverage(engine: AsyncEngine) -> dict[str, str]:
    """Timezone -> state of the daily rollups."""
    async with engine.connect() as connection:
        rows = (await connection.execute(select(rollup_coverage.c.timezone, rollup_coverage.c.state))).all()
    return {str(row.timezone): str(row.state) for row in rows}
