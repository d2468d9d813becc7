"""/spend/logs, /spend/report and /spend/adjustments: read-only views of the ledger.

HTTP only (query parameters, response shapes); what is read and added up, and how dates are read, is
``services/spend_reader.py`` ``SpendReader``.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ledgergate.api.admin.access import container
from ledgergate.api.admin.deps import ERROR_RESPONSES, Reader
from ledgergate.api.admin.params import QueryId
from ledgergate.domain.spend_filters import LogFilter, ReportGroup
from ledgergate.services.keys import key_id_of
from ledgergate.services.spend_reader import SpendReader

router = APIRouter(tags=["spend"], responses=ERROR_RESPONSES)

_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


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


def _reader(request: Request) -> SpendReader:
    return container(request).spend_reader


async def ledger_filter(
    api_key: KeyParam = None,
    user_id: QueryId = None,
    team_id: QueryId = None,
    organization_id: QueryId = None,
    customer: QueryId = None,
    tag: QueryId = None,
    model: QueryId = None,
) -> LogFilter:
    """The ledger filter of the query parameters that ``/spend/logs`` and ``/spend/report`` share."""
    return LogFilter(
        key_id=key_id_of(api_key) if api_key else None,
        user_id=user_id,
        team_id=team_id,
        organization_id=organization_id,
        customer_id=customer,
        tag=tag,
        model=model,
    )


LedgerFilter = Annotated[LogFilter, Depends(ledger_filter)]


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
    rows = await _reader(request).logs(flt, start_date, end_date, page=page, page_size=page_size)
    return [SpendLogRow.model_validate(row) for row in rows]


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
    report = await _reader(request).report(group_by, flt, start_date, end_date)
    # One serialisation, no pydantic pass: a 90-day report by key over a big ledger has ~100k rows (the response
    # model documents the shape; the tests check it).
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
    rows = await _reader(request).adjustments(entity_type, entity_id, limit)
    return [SpendAdjustment.model_validate(row) for row in rows]
