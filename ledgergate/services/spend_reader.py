"""The read side of spend: logs, the per-day report, adjustments, and the dashboard's rollups, over typed filters
(``domain/spend_filters.py``). The storage adapters return rows; what a report adds up, and how dates are read,
is decided here, for the admin API and the dashboard alike.

Dates (``YYYY-MM-DD``) and instants without an offset are read in the gateway's timezone
(``general_settings.timezone``), the one that decides where daily budget windows reset, so a report's day is a
``1d`` window's period. A date as ``end_date`` includes that whole day; an instant is an exclusive end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ledgergate.domain.charging import EntityRef
from ledgergate.domain.durations import parse_duration, period_of
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.money import nanos_to_usd
from ledgergate.domain.ports import Clock, SpendLedgerReader, SpendRollupReader
from ledgergate.domain.spend_filters import Dimension, LogFilter, ReportGroup
from ledgergate.services.views import iso_time

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_DAY = parse_duration("1d")
# Bounds that keep every day's midnight, and the next one, representable in every timezone.
MIN_DAY, MAX_DAY = date(1970, 1, 1), date(9999, 12, 30)
MAX_REPORT_DAYS = 366
DEFAULT_REPORT_DAYS = 30
MAX_ADJUSTMENTS = 1000


def _epoch_us(instant: datetime) -> int:
    """Exact: float seconds would move an instant by a microsecond and a record across the bound."""
    return (instant - _EPOCH) // timedelta(microseconds=1)


def day_us(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """``[start, end)`` of ``day`` in ``tz``: the period of a ``1d`` budget window."""
    start, end = period_of(datetime(day.year, day.month, day.day, 12, tzinfo=tz), _ONE_DAY, tz)
    return _epoch_us(start), _epoch_us(end)


def parse_day(value: str, field: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(field, f"{value!r} is not a date (YYYY-MM-DD)") from exc
    if not MIN_DAY <= day <= MAX_DAY:
        raise InvalidInput(field, f"must lie between {MIN_DAY} and {MAX_DAY}")
    return day


def bound_us(value: str | None, field: str, tz: ZoneInfo, *, is_end: bool) -> int | None:
    """A filter bound: a date means its local midnight (the next one for an inclusive ``end_date``)."""
    if value is None:
        return None
    if len(value) == 10:
        return day_us(parse_day(value, field), tz)[1 if is_end else 0]
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(field, "expected YYYY-MM-DD or an ISO-8601 instant") from exc
    return _epoch_us(parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz))


def log_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger record as /spend/logs shows it (LiteLLM's field names)."""
    return {
        "request_id": row["request_id"],
        "api_key": row["key_id"],
        "spend": nanos_to_usd(row["cost_nanos"]),
        "cost_nanos": row["cost_nanos"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "total_tokens": row["prompt_tokens"] + row["completion_tokens"],
        "model": row["model"],
        "model_id": row["deployment_id"],
        "call_type": row["route"],
        "status": row["status"],
        "user": row["customer_id"],
        "end_user": row["customer_id"],
        "user_id": row["user_id"],
        "team_id": row["team_id"],
        "organization_id": row["organization_id"],
        "request_tags": row["tags"],
        "startTime": iso_time(row["charged_at_us"] / 1_000_000),
        "endTime": iso_time(row["ended_at_us"] / 1_000_000),
    }


def _totals(cost_nanos: int, requests: int, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "spend": nanos_to_usd(cost_nanos),
        "cost_nanos": cost_nanos,
        "requests": requests,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class SpendReader:
    def __init__(
        self,
        ledger: SpendLedgerReader,
        rollups: SpendRollupReader,
        lifetime_spend: Callable[[EntityRef], Awaitable[int]],
        clock: Clock,
        timezone: ZoneInfo,
    ) -> None:
        self._ledger = ledger
        self._rollups = rollups
        self._lifetime_spend = lifetime_spend
        self._clock = clock
        self.timezone = timezone

    def today(self) -> date:
        return datetime.fromtimestamp(self._clock.now_s(), UTC).astimezone(self.timezone).date()

    async def logs(
        self, flt: LogFilter, start: str | None = None, end: str | None = None, *, page: int = 1, page_size: int = 100
    ) -> list[dict[str, Any]]:
        """Charged requests, newest first, between ``start`` and ``end`` (dates or instants, see the module)."""
        tz = self.timezone
        query = dataclasses.replace(
            flt,
            start_us=bound_us(start, "start_date", tz, is_end=False),
            end_us=bound_us(end, "end_date", tz, is_end=True),
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        return [log_row(row) for row in await self._ledger.logs(query)]

    async def recent_records(self, flt: LogFilter) -> list[dict[str, Any]]:
        """The raw records ``flt`` selects (the dashboard's entity page formats them itself)."""
        return await self._ledger.logs(flt)

    async def report(
        self, group_by: ReportGroup, flt: LogFilter, start_date: str | None = None, end_date: str | None = None
    ) -> dict[str, Any]:
        """Spend per day and per ``group_by`` entity (or model) over ``start_date``..``end_date`` (inclusive; default
        the last 30 days), of the records ``flt`` selects. An entity's spend is what was charged to it."""
        tz = self.timezone
        last = parse_day(end_date, "end_date") if end_date else self.today()
        first = parse_day(start_date, "start_date") if start_date else last - timedelta(days=DEFAULT_REPORT_DAYS - 1)
        if first > last:
            raise InvalidInput("start_date", "must not be after end_date")
        if (last - first).days + 1 > MAX_REPORT_DAYS:
            raise InvalidInput("end_date", f"a report covers at most {MAX_REPORT_DAYS} days")
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        bounds = [day_us(day, tz)[0] for day in days] + [day_us(last, tz)[1]]
        rows = await self._ledger.report(group_by.value, bounds, flt)
        # One pass over the rows: a 90-day report by key over a big ledger has ~100k rows.
        group = group_by.value
        labels = [day.isoformat() for day in days]
        per_entity: dict[str, list[int]] = {}
        total = [0, 0, 0, 0]
        report_rows = []
        for row in rows:
            cost, requests, prompt, completion = row.cost_nanos, row.requests, row.prompt_tokens, row.completion_tokens
            report_rows.append(
                {"date": labels[row.day], "entity_type": group, "entity_id": row.entity_id}
                | _totals(cost, requests, prompt, completion)
            )
            sums = per_entity.setdefault(row.entity_id, [0, 0, 0, 0])
            for index, value in enumerate((cost, requests, prompt, completion)):
                sums[index] += value
                total[index] += value
        entities = [
            {"entity_type": group, "entity_id": entity_id, **_totals(*sums)} for entity_id, sums in per_entity.items()
        ]
        entities.sort(key=lambda entity: (-entity["cost_nanos"], entity["entity_id"]))
        return {
            "group_by": group,
            "start_date": first.isoformat(),
            "end_date": last.isoformat(),
            "timezone": tz.key,
            "rows": report_rows,
            "entities": entities,
            "total": _totals(*total),
        }

    async def adjustments(
        self, entity_type: str | None = None, entity_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Admin changes of spend (``reset_spend``), newest first; ``limit`` is clamped to 1..1000."""
        rows = await self._ledger.adjustments(entity_type, entity_id, min(max(limit, 1), MAX_ADJUSTMENTS))
        return [
            {
                **row,
                "previous_spend": nanos_to_usd(row["previous_nanos"]),
                "new_spend": nanos_to_usd(row["new_nanos"]),
                "created_at": iso_time(row["created_at_us"] / 1_000_000),
            }
            for row in rows
        ]

    async def lifetime_spend(self, entity: EntityRef) -> int:
        return await self._lifetime_spend(entity)

    async def total_nanos(self, start_us: int, end_us: int, team_ids: Collection[str] | None = None) -> int:
        return await self._rollups.total_nanos(start_us, end_us, team_ids)

    async def bucket_nanos(
        self, start_us: int, end_us: int, bucket_us: int, team_ids: Collection[str] | None = None
    ) -> dict[int, int]:
        return await self._rollups.bucket_nanos(start_us, end_us, bucket_us, team_ids)

    async def top(
        self, dimension: Dimension, start_us: int, end_us: int, limit: int, team_ids: Collection[str] | None = None
    ) -> list[tuple[str, int]]:
        return await self._rollups.top(dimension, start_us, end_us, limit, team_ids)
