"""The SQL alert store: the claim that makes an alert unique across instances, and the resend bookkeeping.

Run on SQLite (two engines on one file: two processes) and on PostgreSQL when it is reachable.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.alerts import Alert, AlertEvent, DeliveryStatus
from ledgergate.storage.sql.alerts import SqlAlertStore
from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from tests.storage.contract.services import create_pg_schema, drop_pg_schema, pg_engine

NOW_US = 1_767_225_600 * 1_000_000
DAY_US = 86_400 * 1_000_000


def _alert(threshold: str = "0.8", *, entity_id: str = "team-a", created_at_us: int = NOW_US) -> Alert:
    return Alert(
        alert_id=uuid.uuid4().hex,
        event=AlertEvent.THRESHOLD,
        entity_type="team",
        entity_id=entity_id,
        entity_name="Team A",
        window="1d",
        budget_duration="daily",
        period_start_s=1_767_225_600,
        period_end_s=1_767_312_000,
        threshold=threshold,
        spend_nanos=80,
        max_budget_nanos=100,
        soft_budget_nanos=None,
        created_at_us=created_at_us,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def engines(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], AsyncEngine]]:
    """A factory of engines on one fresh, migrated database (each engine: another instance)."""
    opened: list[AsyncEngine] = []
    schema = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'alerts.db'}"

        def factory() -> AsyncEngine:
            opened.append(create_engine(url))
            return opened[-1]
    else:
        schema = await create_pg_schema()

        def factory() -> AsyncEngine:
            opened.append(pg_engine(schema))
            return opened[-1]

    try:
        await upgrade_schema(factory())
        yield factory
    finally:
        for engine in opened:
            await engine.dispose()
        if schema is not None:
            await drop_pg_schema(schema)


async def test_alert_store_concurrent_claims_have_one_winner(engines: Callable[[], AsyncEngine]) -> None:
    """Instances racing to claim the same (entity, window, period, threshold): exactly one may send it."""
    stores = [SqlAlertStore(engines()) for _ in range(2)]
    results = await asyncio.gather(*(stores[i % 2].claim(_alert(), NOW_US) for i in range(16)))
    assert results.count(True) == 1
    assert len(await stores[0].list()) == 1
    # Another threshold, entity or period is another alert.
    assert await stores[1].claim(_alert("0.9"), NOW_US)
    assert await stores[1].claim(_alert(entity_id="team-b"), NOW_US)
    assert await stores[1].claim(replace(_alert(), period_start_s=1_767_312_000), NOW_US)


async def test_alert_store_take_over_is_exclusive_and_waits_for_the_lease(engines: Callable[[], AsyncEngine]) -> None:
    """An undelivered alert is resent by one instance only, and never while its deliverer's lease runs."""
    first, second = SqlAlertStore(engines()), SqlAlertStore(engines())
    alert = _alert()
    assert await first.claim(alert, lease_until_us=NOW_US + 1_000)
    assert await second.resendable(NOW_US - DAY_US, NOW_US, 15, 100) == []
    assert not await second.take_over(alert.alert_id, NOW_US, NOW_US + 5_000)
    later = NOW_US + 1_000
    assert [a.alert_id for a in await second.resendable(NOW_US - DAY_US, later, 15, 100)] == [alert.alert_id]
    taken = await asyncio.gather(
        first.take_over(alert.alert_id, later, later + 5), second.take_over(alert.alert_id, later, later + 5)
    )
    assert sorted(taken) == [False, True]


async def test_alert_store_records_attempts_and_resends_only_young_undelivered(
    engines: Callable[[], AsyncEngine],
) -> None:
    """Delivered, unsent, exhausted and day-old alerts are never resent; failed ones are, until their cap."""
    store = SqlAlertStore(engines())
    delivered, failed, exhausted, old = (
        _alert("0.1"),
        _alert("0.2"),
        _alert("0.3"),
        _alert("0.4", created_at_us=NOW_US - DAY_US - 1),
    )
    unsent = replace(_alert("0.5"), status=DeliveryStatus.UNSENT)
    for alert in (delivered, failed, exhausted, old, unsent):
        assert await store.claim(alert, lease_until_us=0)
    await store.record_failure(failed.alert_id, 1, "HTTP 500: x" * 500)
    await store.finish(delivered.alert_id, DeliveryStatus.DELIVERED, 1, None, NOW_US)
    await store.finish(failed.alert_id, DeliveryStatus.FAILED, 5, "HTTP 500: x", None)
    await store.finish(exhausted.alert_id, DeliveryStatus.FAILED, 15, "HTTP 500: x", None)
    resendable = await store.resendable(NOW_US - DAY_US, NOW_US, 15, 100)
    assert [a.alert_id for a in resendable] == [failed.alert_id]
    assert (resendable[0].attempts, resendable[0].last_error) == (5, "HTTP 500: x")
    rows = {a.threshold: a for a in await store.list()}
    assert (rows["0.1"].status, rows["0.1"].delivered_at_us, rows["0.1"].last_error) == ("delivered", NOW_US, None)
    assert sorted(a.threshold for a in await store.list(status="failed")) == ["0.2", "0.3"]
    assert len(await store.list(status="failed", limit=1)) == 1
    # A shutdown releases the lease of an interrupted delivery, so the next start-up resends it at once.
    assert await store.take_over(failed.alert_id, NOW_US, NOW_US + DAY_US)
    assert await store.resendable(NOW_US - DAY_US, NOW_US, 15, 100) == []
    await store.release([failed.alert_id])
    assert [a.alert_id for a in await store.resendable(NOW_US - DAY_US, NOW_US, 15, 100)] == [failed.alert_id]
