"""Read side of the ledger: spend logs with filters, the spend report per day and entity, adjustments."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import BigInteger, ColumnElement, Select, case, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledgergate.domain.spend_filters import LogFilter, ReportRow
from ledgergate.storage.sql.daily_rollups import complete_timezone, whole_days
from ledgergate.storage.sql.tables import (
    ROLLUP_HOUR_S,
    ROLLUP_RECORD_ID,
    ROLLUP_RECORD_TYPE,
    spend_adjustments,
    spend_charges,
    spend_daily_rollups,
    spend_records,
    spend_rollups,
)

_HOUR_US = ROLLUP_HOUR_S * 1_000_000


def record_conditions(flt: LogFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses on ``spend_records`` selecting exactly the records ``flt`` covers.

    A tag is matched through ``spend_charges`` (the request was charged to the tag), so a tag filter covers the
    same records as the tag's own spend.
    """
    columns = spend_records.c
    conditions: list[ColumnElement[bool]] = []
    for column, value in (
        (columns.key_id, flt.key_id),
        (columns.user_id, flt.user_id),
        (columns.team_id, flt.team_id),
        (columns.organization_id, flt.organization_id),
        (columns.customer_id, flt.customer_id),
        (columns.model, flt.model),
    ):
        if value is not None:
            conditions.append(column == value)
    if flt.tag is not None:
        tagged = select(spend_charges.c.request_id).where(
            spend_charges.c.entity_type == "tag", spend_charges.c.entity_id == flt.tag
        )
        conditions.append(columns.request_id.in_(tagged))
    if flt.start_us is not None:
        conditions.append(columns.charged_at_us >= flt.start_us)
    if flt.end_us is not None:
        conditions.append(columns.charged_at_us < flt.end_us)
    return conditions


def _int(value: int) -> ColumnElement[Any]:
    # Day bounds are integers computed by the server, inlined rather than bound: a year of days would otherwise
    # take hundreds of bind parameters.
    return literal_column(str(int(value)), BigInteger)


def _day_index(instant_us: ColumnElement[Any], bounds_us: Sequence[int], low: int, high: int) -> ColumnElement[Any]:
    """Index ``i`` in ``[low, high)`` with ``bounds_us[i] <= instant_us < bounds_us[i + 1]``, as a CASE tree of
    depth log2(days): days are local calendar days, so they cannot be computed by integer division."""
    if high - low == 1:
        return _int(low)
    middle = (low + high) // 2
    return case(
        (instant_us < _int(bounds_us[middle]), _day_index(instant_us, bounds_us, low, middle)),
        else_=_day_index(instant_us, bounds_us, middle, high),
    )


def report_query(group_by: str, day_bounds_us: Sequence[int], flt: LogFilter) -> Select[Any]:
    """``(day, entity_id, cost_nanos, requests, prompt_tokens, completion_tokens)`` per day and ``group_by``:
    ``model``, or an entity type of ``spend_charges`` (``key``, ``user``, ``team``, ``team_member``, ...).

    Per-entity spend is summed from ``spend_charges`` (one row per charge target of a record), so an entity's
    report is exactly what it was charged: a tag's rows hold only requests that carried the tag, a user's rows
    only their personal-key requests (a team key charges the team and the team member, never the user).
    ``day_bounds_us`` holds the start of each day and, last, the end of the last day; ``flt``'s own time range
    is ignored in favour of them.
    """
    if len(day_bounds_us) < 2 or list(day_bounds_us) != sorted(set(day_bounds_us)):
        raise ValueError("day_bounds_us: at least two strictly increasing instants")
    if _rollups_answer(day_bounds_us, flt):
        return _rollup_report_query(group_by, day_bounds_us, flt.model)
    records = spend_records.c
    in_range = dataclasses.replace(flt, start_us=day_bounds_us[0], end_us=day_bounds_us[-1])
    if group_by == "model":
        entity_id, cost, instant = records.model, records.cost_nanos, records.charged_at_us
        source = select().select_from(spend_records)
    else:
        charges = spend_charges.c
        entity_id, cost, instant = charges.entity_id, charges.cost_nanos, charges.charged_at_us
        source = (
            select()
            .select_from(spend_charges.join(spend_records, records.request_id == charges.request_id))
            .where(
                charges.entity_type == group_by,
                # the same instant as the record's; constraining it too lets the (type, id, time) index serve
                charges.charged_at_us >= day_bounds_us[0],
                charges.charged_at_us < day_bounds_us[-1],
            )
        )
    per_request = (
        source.add_columns(
            _day_index(instant, day_bounds_us, 0, len(day_bounds_us) - 1).label("day"),
            entity_id.label("entity_id"),
            cost.label("cost_nanos"),
            records.prompt_tokens.label("prompt_tokens"),
            records.completion_tokens.label("completion_tokens"),
        )
        .where(*record_conditions(in_range))
        .subquery("per_request")
    )
    columns = per_request.c
    return (
        select(
            columns.day,
            columns.entity_id,
            cast(func.sum(columns.cost_nanos), BigInteger).label("cost_nanos"),
            func.count().label("requests"),
            cast(func.sum(columns.prompt_tokens), BigInteger).label("prompt_tokens"),
            cast(func.sum(columns.completion_tokens), BigInteger).label("completion_tokens"),
        )
        .group_by(columns.day, columns.entity_id)
        .order_by(columns.day, columns.entity_id)
    )


def _by_model_at_most(flt: LogFilter) -> bool:
    """Whether rollups can select the records ``flt`` covers: they know no other column of a record than the
    entity charged and the model."""
    narrowed = (flt.key_id, flt.user_id, flt.team_id, flt.organization_id, flt.customer_id, flt.tag)
    return all(value is None for value in narrowed)


def _rollups_answer(day_bounds_us: Sequence[int], flt: LogFilter) -> bool:
    """Whether the hourly rollups hold the report exactly: every day starts on a whole hour (not so in a
    timezone with a :30/:45 offset) and the filter narrows by model at most."""
    return all(bound % _HOUR_US == 0 for bound in day_bounds_us) and _by_model_at_most(flt)


def daily_report_query(group_by: str, timezone: str, first_day_s: int, end_s: int, model: str | None) -> Select[Any]:
    """``(day_start_s, entity_id, cost_nanos, requests, prompt_tokens, completion_tokens)`` per local day of
    ``timezone`` in ``[first_day_s, end_s)`` and ``group_by`` entity (or model, from the whole-ledger rows), from
    the daily rollups: the work grows with days and entities, not records."""
    daily = spend_daily_rollups.c
    conditions = [daily.timezone == timezone, daily.day_start_s >= first_day_s, daily.day_start_s < end_s]
    if group_by == "model":
        entity_id: Any = daily.model
        conditions += [daily.entity_type == ROLLUP_RECORD_TYPE, daily.entity_id == ROLLUP_RECORD_ID]
    else:
        entity_id = daily.entity_id
        conditions.append(daily.entity_type == group_by)
    if model is not None:
        conditions.append(daily.model == model)
    return (
        select(
            daily.day_start_s,
            entity_id.label("entity_id"),
            cast(func.sum(daily.cost_nanos), BigInteger).label("cost_nanos"),
            cast(func.sum(daily.requests), BigInteger).label("requests"),
            cast(func.sum(daily.prompt_tokens), BigInteger).label("prompt_tokens"),
            cast(func.sum(daily.completion_tokens), BigInteger).label("completion_tokens"),
        )
        .where(*conditions)
        .group_by(daily.day_start_s, entity_id)
        .order_by(daily.day_start_s, entity_id)
    )


def _rollup_report_query(group_by: str, day_bounds_us: Sequence[int], model: str | None) -> Select[Any]:
    """``report_query`` from the rollups: an entity's rows are its charges per hour, a model's the whole-ledger
    rows (one per record), so the sums are the raw ones and the work grows with hours, not records."""
    rollups = spend_rollups.c
    bounds_s = [bound // 1_000_000 for bound in day_bounds_us]
    if group_by == "model":
        entity_id: Any = rollups.model
        conditions = [rollups.entity_type == ROLLUP_RECORD_TYPE, rollups.entity_id == ROLLUP_RECORD_ID]
    else:
        entity_id = rollups.entity_id
        conditions = [rollups.entity_type == group_by]
    conditions += [rollups.hour_start_s >= bounds_s[0], rollups.hour_start_s < bounds_s[-1]]
    if model is not None:
        conditions.append(rollups.model == model)
    per_hour = (
        select(
            _day_index(rollups.hour_start_s, bounds_s, 0, len(bounds_s) - 1).label("day"),
            entity_id.label("entity_id"),
            rollups.cost_nanos,
            rollups.requests,
            rollups.prompt_tokens,
            rollups.completion_tokens,
        )
        .where(*conditions)
        .subquery("per_hour")
    )
    columns = per_hour.c
    return (
        select(
            columns.day,
            columns.entity_id,
            cast(func.sum(columns.cost_nanos), BigInteger).label("cost_nanos"),
            cast(func.sum(columns.requests), BigInteger).label("requests"),
            cast(func.sum(columns.prompt_tokens), BigInteger).label("prompt_tokens"),
            cast(func.sum(columns.completion_tokens), BigInteger).label("completion_tokens"),
        )
        .group_by(columns.day, columns.entity_id)
        .order_by(columns.day, columns.entity_id)
    )


def _report_rows(rows: Sequence[Any], day_of: Callable[[int], int]) -> list[ReportRow]:
    """``(day, entity_id, sums...)`` result rows as ``ReportRow``s, ``day_of`` mapping their first column.

    Unpacked by position: a key report has a row per key and day (90,000 for 1,000 keys over 90 days), and a
    result row's attributes cost several times more by name.
    """
    # Both dialects return the (cast) sums and day numbers as int and ids as str: no conversions.
    return [ReportRow(day_of(day), *sums) for day, *sums in rows]


async def _daily_rows(
    connection: AsyncConnection,
    group_by: str,
    timezone: str,
    bounds_us: Sequence[int],
    first_day: int,
    model: str | None,
) -> list[ReportRow]:
    """The report rows of consecutive whole local days ``bounds_us`` (numbered from ``first_day``)."""
    day_of = {bound // 1_000_000: first_day + index for index, bound in enumerate(bounds_us[:-1])}
    query = daily_report_query(group_by, timezone, bounds_us[0] // 1_000_000, bounds_us[-1] // 1_000_000, model)
    return _report_rows((await connection.execute(query)).all(), day_of.__getitem__)


class SpendQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def logs(self, flt: LogFilter) -> list[dict[str, Any]]:
        query = (
            select(spend_records)
            .where(*record_conditions(flt))
            .order_by(spend_records.c.charged_at_us.desc(), spend_records.c.request_id)
            .offset(flt.offset)
            .limit(flt.limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [{**row, "tags": orjson.loads(row["tags"])} for row in rows]

    async def report(self, group_by: str, day_bounds_us: Sequence[int], flt: LogFilter) -> list[ReportRow]:
        """Spend per day and ``group_by`` over the days ``day_bounds_us`` delimits (see ``report_query``).

        Days that are whole local days of the timezone the daily rollups completely cover are read from them;
        runs of other days (another timezone's, partial days, or all of them while the daily rollups are still
        being filled) as ``report_query`` reads them. Either way the sums are the raw ones.
        """
        if len(day_bounds_us) < 2 or list(day_bounds_us) != sorted(set(day_bounds_us)):
            raise ValueError("day_bounds_us: at least two strictly increasing instants")
        async with self._engine.connect() as connection:
            timezone = await complete_timezone(connection) if _by_model_at_most(flt) else None
            daily = whole_days(day_bounds_us, ZoneInfo(timezone)) if timezone else [False] * (len(day_bounds_us) - 1)
            rows: list[ReportRow] = []
            first = 0
            for from_daily, run in itertools.groupby(daily):
                last = first + len(list(run))
                bounds = day_bounds_us[first : last + 1]
                if from_daily and timezone is not None:
                    rows += await _daily_rows(connection, group_by, timezone, bounds, first, flt.model)
                else:
                    result = await connection.execute(report_query(group_by, bounds, flt))
                    rows += _report_rows(result.all(), first.__add__)
                first = last
            return rows

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
