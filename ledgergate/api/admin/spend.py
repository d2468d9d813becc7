"""/spend/logs and /spend/adjustments."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request

from ledgergate.api.admin.deps import ERROR_RESPONSES, Reader
from ledgergate.api.errors import ApiError
from ledgergate.domain.money import nanos_to_usd
from ledgergate.services.keys import key_id_of
from ledgergate.services.views import iso_time
from ledgergate.storage.sql.spend_queries import LogFilter

router = APIRouter(tags=["spend"], responses=ERROR_RESPONSES)


def _instant_us(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
    except ValueError as exc:
        raise ApiError(
            400, f"{field}: expected YYYY-MM-DD or an ISO-8601 instant", "invalid_request_error", field
        ) from exc
    return int(parsed.timestamp() * 1_000_000)


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
    api_key: str | None = None,
    user_id: str | None = None,
    team_id: str | None = None,
    organization_id: str | None = None,
    customer: str | None = None,
    tag: str | None = None,
    model: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    page: int = 1,
    page_size: int = 100,
) -> list[dict[str, Any]]:
    if page < 1 or not 1 <= page_size <= 1000:
        raise ApiError(400, "page must be >= 1 and page_size between 1 and 1000", "invalid_request_error")
    flt = LogFilter(
        key_id=key_id_of(api_key) if api_key else None,
        user_id=user_id,
        team_id=team_id,
        organization_id=organization_id,
        customer_id=customer,
        tag=tag,
        model=model,
        start_us=_instant_us(start_date, "start_date"),
        end_us=_instant_us(end_date, "end_date"),
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    rows = await request.app.state.container.spend.logs(flt)
    return [log_row(row) for row in rows]


@router.get("/spend/adjustments")
async def spend_adjustments(
    request: Request, _: Reader, entity_type: str | None = None, entity_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    rows = await request.app.state.container.spend.adjustments(entity_type, entity_id, min(max(limit, 1), 1000))
    return [
        {
            **row,
            "previous_spend": nanos_to_usd(row["previous_nanos"]),
            "new_spend": nanos_to_usd(row["new_nanos"]),
            "created_at": iso_time(row["created_at_us"] / 1_000_000),
        }
        for row in rows
    ]
