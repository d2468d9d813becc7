"""The alert log in SQL: the claim (an insert that only one instance can win) and the delivery bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.alerts import Alert, AlertEvent, DeliveryStatus
from ledgergate.storage.sql.tables import budget_alerts

_MAX_ERROR_CHARS = 1000
_RESENDABLE = (DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value)


def _row(alert: Alert, lease_until_us: int) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "event": alert.event.value,
        "entity_type": alert.entity_type,
        "entity_id": alert.entity_id,
        "entity_name": alert.entity_name[:255],
        "window": alert.window,
        "budget_duration": alert.budget_duration,
        "period_start_s": alert.period_start_s,
        "period_end_s": alert.period_end_s,
        "threshold": alert.threshold,
        "spend_nanos": alert.spend_nanos,
        "max_budget_nanos": alert.max_budget_nanos,
        "soft_budget_nanos": alert.soft_budget_nanos,
        "status": alert.status.value,
        "attempts": alert.attempts,
        "last_error": alert.last_error,
        "created_at_us": alert.created_at_us,
        "delivered_at_us": alert.delivered_at_us,
        "lease_until_us": lease_until_us,
    }


def _alert(row: Any) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        event=AlertEvent(row.event),
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        entity_name=row.entity_name,
        window=row.window,
        budget_duration=row.budget_duration,
        period_start_s=row.period_start_s,
        period_end_s=row.period_end_s,
        threshold=row.threshold,
        spend_nanos=row.spend_nanos,
        max_budget_nanos=row.max_budget_nanos,
        soft_budget_nanos=row.soft_budget_nanos,
        created_at_us=row.created_at_us,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        delivered_at_us=row.delivered_at_us,
    )


class SqlAlertStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        # No conflict target: the unique (entity, window, period, threshold) key is the one that can conflict.
        self._claim = insert(budget_alerts).on_conflict_do_nothing().returning(budget_alerts.c.alert_id)

    async def claim(self, alert: Alert, lease_until_us: int) -> bool:
        """Log ``alert`` unless its (entity, window, period, threshold) is logged already; True if this call
        logged it, which makes the caller its one deliverer."""
        async with self._engine.begin() as connection:
            result = await connection.execute(self._claim, _row(alert, lease_until_us))
            return result.first() is not None

    async def record_failure(self, alert_id: str, attempts: int, error: str) -> None:
        """One failed attempt, written as it happens so the log shows a delivery that is still retrying."""
        await self._update(alert_id, attempts=attempts, last_error=error[:_MAX_ERROR_CHARS])

    async def finish(
        self, alert_id: str, status: DeliveryStatus, attempts: int, error: str | None, delivered_at_us: int | None
    ) -> None:
        await self._update(
            alert_id,
            status=status.value,
            attempts=attempts,
            last_error=error[:_MAX_ERROR_CHARS] if error else None,
            delivered_at_us=delivered_at_us,
            lease_until_us=0,
        )

    async def take_over(self, alert_id: str, now_us: int, lease_until_us: int) -> bool:
        """Become the deliverer of an undelivered alert whose lease has run out; False if another instance did
        (or it was delivered meanwhile)."""
        statement = (
            update(budget_alerts)
            .where(
                budget_alerts.c.alert_id == alert_id,
                budget_alerts.c.status.in_(_RESENDABLE),
                budget_alerts.c.lease_until_us <= now_us,
            )
            .values(status=DeliveryStatus.PENDING.value, lease_until_us=lease_until_us)
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
            return bool(result.rowcount)

    async def release(self, alert_ids: Sequence[str]) -> None:
        """Give up the leases of deliveries interrupted by a shutdown, so the next sweep resends them at once."""
        if not alert_ids:
            return
        statement = (
            update(budget_alerts)
            .where(budget_alerts.c.alert_id.in_(list(alert_ids)), budget_alerts.c.status == DeliveryStatus.PENDING)
            .values(lease_until_us=0)
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def resendable(self, created_since_us: int, now_us: int, max_attempts: int, limit: int) -> list[Alert]:
        """Undelivered alerts created since ``created_since_us`` that nobody is delivering now, oldest first."""
        query = (
            select(budget_alerts)
            .where(
                budget_alerts.c.status.in_(_RESENDABLE),
                budget_alerts.c.created_at_us >= created_since_us,
                budget_alerts.c.lease_until_us <= now_us,
                budget_alerts.c.attempts < max_attempts,
            )
            .order_by(budget_alerts.c.created_at_us)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            return [_alert(row) for row in (await connection.execute(query)).all()]

    async def list(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """The log, newest first."""
        query = select(budget_alerts).order_by(budget_alerts.c.created_at_us.desc(), budget_alerts.c.alert_id)
        if entity_type is not None:
            query = query.where(budget_alerts.c.entity_type == entity_type)
        if entity_id is not None:
            query = query.where(budget_alerts.c.entity_id == entity_id)
        if status is not None:
            query = query.where(budget_alerts.c.status == status)
        async with self._engine.connect() as connection:
            return [_alert(row) for row in (await connection.execute(query.limit(limit))).all()]

    async def _update(self, alert_id: str, **values: Any) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(update(budget_alerts).where(budget_alerts.c.alert_id == alert_id).values(**values))
