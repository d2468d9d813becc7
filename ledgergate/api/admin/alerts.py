"""GET /alerts: the budget alert log (what was raised, and whether its webhook was delivered)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from ledgergate.api.admin.deps import ERROR_RESPONSES, Reader
from ledgergate.api.admin.params import QueryId
from ledgergate.domain.alerts import Alert
from ledgergate.services.alerts import BudgetAlerter, alert_payload
from ledgergate.services.keys import key_id_of
from ledgergate.services.views import iso_time

router = APIRouter(tags=["alerts"], responses=ERROR_RESPONSES)

EntityTypeParam = Literal["key", "user", "team", "team_member", "organization", "customer", "tag", "global"]
StatusParam = Literal["pending", "delivered", "failed", "unsent"]


class AlertOut(BaseModel):
    event: Literal["budget_threshold_crossed", "soft_budget_crossed"]
    entity: str = Field(description="the entity type")
    entity_id: str = Field(description="for a key: its token (sha256 of the secret)")
    entity_name: str
    window: str | None = Field(description="the window's budget_duration; null for a lifetime budget")
    threshold: float | None = Field(description="fraction of max_budget; null for a soft budget alert")
    spend: float = Field(description="USD: the window's spend when the alert was raised")
    max_budget: float = Field(description="USD")
    soft_budget: float | None = Field(description="USD")
    reset_at: str | None
    period_start: str | None
    alert_id: str
    created_at: str | None
    status: StatusParam = Field(
        description="pending (being sent), delivered, failed (every attempt failed), unsent (no webhook configured)"
    )
    attempts: int = Field(description="webhook POSTs made so far")
    last_error: str | None
    delivered_at: str | None


def _out(alert: Alert) -> AlertOut:
    delivered_at = alert.delivered_at_us / 1_000_000 if alert.delivered_at_us is not None else None
    return AlertOut.model_validate(
        {
            **alert_payload(alert),
            "status": alert.status.value,
            "attempts": alert.attempts,
            "last_error": alert.last_error,
            "delivered_at": iso_time(delivered_at),
        }
    )


@router.get("/alerts")
async def list_alerts(
    request: Request,
    _: Reader,
    entity_type: EntityTypeParam | None = None,
    entity_id: QueryId = None,
    status: StatusParam | None = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many, newest first")] = 100,
) -> list[AlertOut]:
    """Budget alerts, newest first (proxy admins and viewers). A key may be named by its secret or its token."""
    alerter: BudgetAlerter = request.app.state.container.alerter
    if entity_type == "key" and entity_id is not None:
        entity_id = key_id_of(entity_id)
    alerts = await alerter.alerts(entity_type=entity_type, entity_id=entity_id, status=status, limit=limit)
    return [_out(alert) for alert in alerts]
