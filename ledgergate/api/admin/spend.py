"""/spend/logs, /spend/report and /spend/adjustments: read-only views of the ledger.

Dates (``YYYY-MM-DD``) and instants without an offset are read in the gateway's timezone
(``general_settings.timezone``), the one that decides where daily budget windows reset, so a report's day is a
``1d`` window's period. A date as ``end_date`` includes that whole day; an instant is an exclusive end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ledgergate.api.admin.access import container
from ledgergate.api.admin.deps import ERROR_RESPONSES, Reader
from ledgergate.api.admin.params import QueryId
from ledgergate.api.errors import ApiError
from ledgergate.domain.durations import parse_duration, period_of
from ledgergate.domain.money import nanos_to_usd
from ledgergate.services.keys import key_id_of
from ledgergate.services.views import iso_time

router = APIRouter(tags=["spend"], responses=ERROR_RESPONSES)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_DAY = parse_duration("1d")
_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# Bounds that keep every day's midnight, and the next one, representable in every timezone.
MIN_DAY, MAX_DAY = date(1970, 1, 1), date(9999, 12, 30)
MAX_REPORT_DAYS = 366
DEFAULT_REPORT_DAYS = 30


class ReportGroup(StrEnum):
    """What /spend/report groups by: an entity type charged by requests (``spend_charges``), or the model."""

    KEY = "key"
    USER = "user"
    TEAM = "team"
    TEAM_MEMBER = "team_member"
    ORGANIZATION = "organization"
    CUSTOMER = "customer"
    TAG = "tag"
    MODEL = "model"


KeyParam = Annotated[
    str | None,
    Query(min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f\x7f]+$", description="the key's secret or token"),
]
InstantParam = Annotated[
    str | None, Query(max_length=64, description="YYYY-MM-DD or an ISO-8601 instant (gateway timezone if none)")
]
DateParam = Annotated[str | None, Query(pattern=_DATE_PATTERN, description="YYYY-MM-DD, in the gateway timezone")]


class SpendLogRow(BaseModel):
    request_id: str
    api_key: str = Field(description="the key's token (sha256 of its secret)")
    spend: float = Field(description="USD")
    cost_nanos: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    model: str
    model_id: str = Field(description="the deployment that served the request")
    call_type: str
    status: str = Field(description="success, error or cancelled")
    user: str | None = Field(description="the customer (the request's `user` field)")
    end_user: str | None
    user_id: str | None = Field(description="the key's user")
    team_id: str | None
    organization_id: str | None
    request_tags: list[str]
    startTime: str | None
    endTime: str | None


class SpendTotals(BaseModel):
    spend: float = Field(description="USD")
    cost_nanos: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class SpendReportEntity(SpendTotals):
    entity_type: ReportGroup
    entity_id: str = Field(description="the entity's id (a key's token), or the model name")


class SpendReportRow(SpendReportEntity):
    date: str = Field(description="YYYY-MM-DD, a day in the gateway timezone")


class SpendReport(BaseModel):
    group_by: ReportGroup
    start_date: str
    end_date: str
    timezone: str
    rows: list[SpendReportRow] = Field(description="one per day and entity with spend that day")
    entities: list[SpendReportEntity] = Field(description="each entity's total over the range, largest first")
    total: SpendTotals = Field(description="the sum of the rows")


class SpendAdjustment(BaseModel):
    adjustment_id: str
    entity_type: str
    entity_id: str
    window: str
    period_start_s: int
    previous_nanos: int
    new_nanos: int
    delta_nanos: int
    previous_spend: float
    new_spend: float
    actor: str
    reason: str
    created_at_us: int
    created_at: str | None


def _timezone(request: Request) -> ZoneInfo:
    return ZoneInfo(container(request).config.settings.timezone)


def _today(request: Request, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(container(request).clock.now_s(), UTC).astimezone(tz).date()


def _epoch_us(instant: datetime) -> int:
    """Exact: float seconds would move an instant by a microsecond and a record across the bound."""
    return (instant - _EPOCH) // timedelta(microseconds=1)


def _day_us(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """``[start, end)`` of ``day`` in ``tz``: the period of a ``1d`` budget window."""
    start, end = period_of(datetime(day.year, day.month, day.day, 12, tzinfo=tz), _ONE_DAY, tz)
    return _epoch_us(start), _epoch_us(end)


def _parse_day(value: str, field: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(400, f"{field}: {value!r} is not a date (YYYY-MM-DD)", "invalid_request_error", field) from exc
    if not MIN_DAY <= day <= MAX_DAY:
        raise ApiError(400, f"{field}: must lie between {MIN_DAY} and {MAX_DAY}", "invalid_request_error", field)
    return day


def _bound_us(value: str | None, field: str, tz: ZoneInfo, *, is_end: bool) -> int | None:
    """A filter bound: a date means its local midnight (the next one for an inclusive ``end_date``)."""
    if value is None:
        return None
    if len(value) == 10:
        day = _parse_day(value, field)
        return _day_us(day, tz)[1 if is_end else 0]
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(
            400, f"{field}: expected YYYY-MM-DD or an ISO-8601 instant", "invalid_request_error", field
        ) from exc
    return _epoch_us(parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz))


async def ledger_filter(
    api_key: KeyParam = None,
    user_id: QueryId = None,
    team_id: QueryId = None,
    organization_id: QueryId = None,
    customer: QueryId = None,
    tag: QueryId = None,
    model: QueryId = None,
) -> dict[str, str | None]:
    """The ledger filter (``LogFilter`` fields of the storage read side) of the query parameters that
    ``/spend/logs`` and ``/spend/report`` share."""
    return {
        "key_id": key_id_of(api_key) if api_key else None,
        "user_id": user_id,
        "team_id": team_id,
        "organization_id": organization_id,
        "customer_id": customer,
        "tag": tag,
        "model": model,
    }


LedgerFilter = Annotated[dict[str, str | None], Depends(ledger_filter)]


def log_row(row: dict[str, Any]) -> dict[str, Any]:
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


@router.get("/spend/logs")
async def spend_logs(
    request: Request,
    _: Reader,
    flt: LedgerFilter,
    start_date: InstantParam = None,
    end_date: InstantParam = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SpendLogRow]:
    """Charged requests, newest first. ``user_id`` is the key's user (team keys included); ``tag`` covers the
    requests charged to the tag."""
    tz = _timezone(request)
    query = {
        **flt,
        "start_us": _bound_us(start_date, "start_date", tz, is_end=False),
        "end_us": _bound_us(end_date, "end_date", tz, is_end=True),
        "offset": (page - 1) * page_size,
        "limit": page_size,
    }
    rows = await container(request).spend.logs(query)
    return [SpendLogRow.model_validate(log_row(row)) for row in rows]


def _totals(cost_nanos: int, requests: int, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "spend": nanos_to_usd(cost_nanos),
        "cost_nanos": cost_nanos,
        "requests": requests,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


@router.get("/spend/report", response_model=SpendReport)
async def spend_report(
    request: Request,
    _: Reader,
    flt: LedgerFilter,
    group_by: ReportGroup = ReportGroup.KEY,
    start_date: DateParam = None,
    end_date: DateParam = None,
) -> Response:
    """Spend per day and per ``group_by`` entity (or model) over ``start_date``..``end_date`` (inclusive; default
    the last 30 days), of the records the filters select (the same as ``/spend/logs``). An entity's spend is
    what was charged to it: ``group_by=user`` shows personal-key spend (a team key charges the team and the
    team member instead), ``group_by=tag`` only tagged requests, once per tag."""
    tz = _timezone(request)
    last = _parse_day(end_date, "end_date") if end_date else _today(request, tz)
    first = _parse_day(start_date, "start_date") if start_date else last - timedelta(days=DEFAULT_REPORT_DAYS - 1)
    if first > last:
        raise ApiError(400, "start_date: must not be after end_date", "invalid_request_error", "start_date")
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if len(days) > MAX_REPORT_DAYS:
        raise ApiError(
            400, f"end_date: a report covers at most {MAX_REPORT_DAYS} days", "invalid_request_error", "end_date"
        )
    bounds = [_day_us(day, tz)[0] for day in days] + [_day_us(last, tz)[1]]
    rows = await container(request).spend.report(group_by.value, bounds, flt)
    # One pass over the rows and one serialisation: a 90-day report by key over a big ledger has ~100k rows, too
    # many to validate through pydantic twice (the response model documents the shape; the tests check it).
    group = group_by.value
    labels = [day.isoformat() for day in days]
    per_entity: dict[str, list[int]] = {}
    total = [0, 0, 0, 0]
    report_rows = []
    for row in rows:
        cost, requests, prompt, completion = row.cost_nanos, row.requests, row.prompt_tokens, row.completion_tokens
        report_rows.append(
            {
                "date": labels[row.day],
                "entity_type": group,
                "entity_id": row.entity_id,
                "spend": nanos_to_usd(cost),
                "cost_nanos": cost,
                "requests": requests,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        )
        entity_sums = per_entity.get(row.entity_id)
        if entity_sums is None:
            per_entity[row.entity_id] = [cost, requests, prompt, completion]
        else:
            entity_sums[0] += cost
            entity_sums[1] += requests
            entity_sums[2] += prompt
            entity_sums[3] += completion
        total[0] += cost
        total[1] += requests
        total[2] += prompt
        total[3] += completion
    entities = [
        {"entity_type": group, "entity_id": entity_id, **_totals(*sums)} for entity_id, sums in per_entity.items()
    ]
    entities.sort(key=lambda entity: (-entity["cost_nanos"], entity["entity_id"]))
    report = {
        "group_by": group,
        "start_date": first.isoformat(),
        "end_date": last.isoformat(),
        "timezone": tz.key,
        "rows": report_rows,
        "entities": entities,
        "total": _totals(*total),
    }
    return Response(orjson.dumps(report), media_type="application/json")


@router.get("/spend/adjustments")
async def spend_adjustments(
    request: Request,
    _: Reader,
    entity_type: QueryId = None,
    entity_id: QueryId = None,
    limit: Annotated[int, Query(description="at most 1000 rows are returned")] = 100,
) -> list[SpendAdjustment]:
    """Admin changes of spend (``reset_spend``), newest first."""
    rows = await container(request).spend.adjustments(entity_type, entity_id, min(max(limit, 1), 1000))
    return [
        SpendAdjustment.model_validate(
            {
                **row,
                "previous_spend": nanos_to_usd(row["previous_nanos"]),
                "new_spend": nanos_to_usd(row["new_nanos"]),
                "created_at": iso_time(row["created_at_us"] / 1_000_000),
            }
        )
        for row in rows
    ]
