"""Budget alerts end to end: real gateway, real fake upstream, real webhook receiver on a loopback port.

Budgets are sized in requests: a FLAT_MODEL request of n output tokens costs exactly n x 2000 nanos.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ledgergate.domain.alerts import Alert, AlertEvent
from ledgergate.storage.sql.alerts import SqlAlertStore
from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from tests.api.alerts.receiver import WebhookReceiver
from tests.api.alerts.support import AlertingGateway, alert_log, client, eventually, new_key, settle_quietly, spend, usd

BUDGET_NANOS = 100_000  # 50 output tokens


async def test_alerts_each_threshold_is_sent_once_per_period(
    alerting_gateways: Callable[..., AlertingGateway], receiver: WebhookReceiver
) -> None:
    """80%, 90% and 100% of a window each produce exactly one webhook; requests that stay above a threshold
    (alerts that "fire on every request") send nothing more."""
    with alerting_gateways() as gateway:
        async with client(gateway) as admin:
            key = await new_key(admin, max_budget=usd(BUDGET_NANOS))
        await spend(gateway, key["key"], 15)  # 30%
        await spend(gateway, key["key"], 15)  # 60%
        await settle_quietly()
        assert receiver.posts() == []
        await spend(gateway, key["key"], 11)  # 82%
        first = await eventually(receiver.alerts, lambda alerts: len(alerts) >= 1)
        await spend(gateway, key["key"], 1)  # 84%: still above 80%, nothing new
        await settle_quietly()
        assert receiver.alerts() == first
        await spend(gateway, key["key"], 4)  # 92%
        await spend(gateway, key["key"], 4)  # 100%
        alerts = await eventually(receiver.alerts, lambda alerts: len(alerts) >= 3)
        await settle_quietly()
        alerts = receiver.alerts()
        log = await alert_log(gateway, entity_type="key", entity_id=key["key"])
    assert [alert["threshold"] for alert in alerts] == [0.8, 0.9, 1.0]
    assert first[0] == {
        "event": "budget_threshold_crossed",
        "entity": "key",
        "entity_id": key["token"],
        "entity_name": key["key_alias"],
        "window": None,  # a lifetime budget
        "model": None,
        "threshold": 0.8,
        "spend": usd(82_000),
        "max_budget": usd(BUDGET_NANOS),
        "soft_budget": None,
        "reset_at": None,
        "period_start": None,
        "alert_id": first[0]["alert_id"],
        "created_at": first[0]["created_at"],
    }
    assert [post["headers"]["x-ledgergate-alert-id"] for post in receiver.posts()] == [a["alert_id"] for a in alerts]
    assert {(row["alert_id"], row["status"], row["attempts"]) for row in log} == {
        (alert["alert_id"], "delivered", 1) for alert in alerts
    }


async def test_alerts_soft_budget_and_each_window_alert_separately(
    alerting_gateways: Callable[..., AlertingGateway], receiver: WebhookReceiver
) -> None:
    """The soft budget alerts on the primary window (type soft_budget_crossed), a further window alerts on its
    own max_budget, and a window far from its limit stays silent."""
    with alerting_gateways() as gateway:
        async with client(gateway) as admin:
            key = await new_key(
                admin,
                max_budget=usd(1_000_000),  # lifetime: 3.2% used below
                soft_budget=usd(30_000),
                budget_limits=[{"budget_duration": "1d", "max_budget": usd(40_000)}],
            )
        await spend(gateway, key["key"], 16)  # 32k: soft budget reached, 80% of the daily 40k
        await eventually(receiver.alerts, lambda alerts: len(alerts) >= 2)
        await settle_quietly()
    by_event = {alert["event"]: alert for alert in receiver.alerts()}
    assert len(receiver.alerts()) == 2
    soft, daily = by_event["soft_budget_crossed"], by_event["budget_threshold_crossed"]
    assert (soft["window"], soft["threshold"], soft["soft_budget"], soft["max_budget"]) == (
        None,
        None,
        usd(30_000),
        usd(1_000_000),
    )
    assert (daily["window"], daily["threshold"], daily["max_budget"], daily["spend"]) == (
        "1d",
        0.8,
        usd(40_000),
        0.000032,
    )
    assert daily["reset_at"] is not None and daily["period_start"] is not None


async def test_alerts_new_period_rearms_every_threshold(
    alerting_gateways: Callable[..., AlertingGateway], receiver: WebhookReceiver
) -> None:
    """A threshold alerts once per window period: the next period of the same window alerts again."""
    with alerting_gateways() as gateway:
        async with client(gateway) as admin:
            key = await new_key(admin, max_budget=usd(20_000), budget_duration="2s")
        await spend(gateway, key["key"], 9)  # 90% of this period
        first = await eventually(receiver.alerts, lambda alerts: len(alerts) >= 2)
        reset_at = max(alert["reset_at"] for alert in first)
        await asyncio.sleep(max(0.0, datetime.fromisoformat(reset_at).timestamp() - time.time()) + 0.05)
        await spend(gateway, key["key"], 9)  # 90% of the next period
        alerts = await eventually(receiver.alerts, lambda alerts: len(alerts) >= 4)
        await settle_quietly()
    alerts = receiver.alerts()
    assert len(alerts) == 4
    periods = Counter((alert["period_start"], alert["threshold"]) for alert in alerts)
    assert set(periods.values()) == {1} and len({alert["period_start"] for alert in alerts}) == 2


async def test_alerts_two_instances_on_one_database_send_once(
    tmp_path: Path, alerting_gateways: Callable[..., AlertingGateway], receiver: WebhookReceiver
) -> None:
    """The claim is in the database: an instance that sees a threshold another instance already alerted on
    sends nothing, and a threshold first reached through it is sent by it, once."""
    shared = tmp_path / "shared.db"
    with alerting_gateways(db_path=shared) as first, alerting_gateways(db_path=shared) as second:
        async with client(first) as admin:
            key = await new_key(admin, max_budget=usd(BUDGET_NANOS))
        for tokens in (15, 15, 11):  # 82%, through the first instance
            await spend(first, key["key"], tokens)
        await eventually(receiver.alerts, lambda alerts: len(alerts) >= 1)
        await spend(second, key["key"], 1)  # 84%: the second instance loads the spend from the ledger
        await settle_quietly()
        assert [alert["threshold"] for alert in receiver.alerts()] == [0.8]
        await spend(second, key["key"], 4)  # 92%
        await eventually(receiver.alerts, lambda alerts: len(alerts) >= 2)
        await settle_quietly()
        log = await alert_log(second, entity_type="key", entity_id=key["token"])
    assert [alert["threshold"] for alert in receiver.alerts()] == [0.8, 0.9]
    assert len(receiver.posts()) == 2
    assert sorted(row["threshold"] for row in log) == [0.8, 0.9]


async def test_alerts_failed_deliveries_are_retried_with_backoff(
    alerting_gateways: Callable[..., AlertingGateway], receiver: WebhookReceiver
) -> None:
    """A receiver answering 500 twice still gets the alert (third attempt), and the log counts the attempts."""
    receiver.fail_next(2)
    with alerting_gateways() as gateway:
        async with client(gateway) as admin:
            key = await new_key(admin, max_budget=usd(20_000))
        await spend(gateway, key["key"], 8)  # 80%
        await eventually(receiver.alerts, lambda alerts: len(alerts) >= 1)
        log = await eventually(
            lambda: alert_log(gateway, entity_id=key["token"]), lambda rows: rows and rows[0]["status"] == "delivered"
        )
    posts = receiver.posts()
    assert [post["answered"] for post in posts] == [False, False, True]
    assert len({post["json"]["alert_id"] for post in posts}) == 1  # the same alert, resent
    assert (log[0]["status"], log[0]["attempts"], log[0]["last_error"]) == ("delivered", 3, None)


async def test_alerts_undelivered_alert_is_resent_after_a_restart(
    alerting_gateways: Callable[..., AlertingGateway], receiver: WebhookReceiver
) -> None:
    """An alert whose every attempt failed is not lost: the next start-up resends it (and only it, once)."""
    receiver.fail_next(1000)
    gateway = alerting_gateways(webhook_max_attempts=2).start()
    async with client(gateway) as admin:
        key = await new_key(admin, max_budget=usd(20_000))
    await spend(gateway, key["key"], 8)  # 80%
    failed = await eventually(
        lambda: alert_log(gateway, entity_id=key["token"]), lambda rows: rows and rows[0]["status"] == "failed"
    )
    assert (failed[0]["attempts"], failed[0]["last_error"]) == (2, "HTTP 500: nope")
    receiver.fail_next(0)
    gateway.restart()
    delivered = await eventually(receiver.alerts, lambda alerts: len(alerts) >= 1)
    log = await eventually(
        lambda: alert_log(gateway, entity_id=key["token"]), lambda rows: rows[0]["status"] == "delivered"
    )
    await settle_quietly()
    gateway.stop()
    assert [alert["alert_id"] for alert in receiver.alerts()] == [failed[0]["alert_id"]]
    assert delivered[0]["threshold"] == 0.8
    assert (log[0]["status"], log[0]["attempts"]) == ("delivered", 3)


async def test_alerts_are_logged_but_not_sent_without_a_webhook(
    alerting_gateways: Callable[..., AlertingGateway], receiver: WebhookReceiver
) -> None:
    """Without general_settings.alerting.webhook_url alerts still appear in GET /alerts (status unsent)."""
    with alerting_gateways(webhook_url=None) as gateway:
        async with client(gateway) as admin:
            key = await new_key(admin, max_budget=usd(20_000))
        await spend(gateway, key["key"], 10)  # 100%
        log = await eventually(lambda: alert_log(gateway, entity_id=key["token"]), lambda rows: len(rows) >= 3)
        unsent = await alert_log(gateway, status="unsent", limit=2)
    assert receiver.posts() == []
    assert sorted(row["threshold"] for row in log) == [0.8, 0.9, 1.0]
    assert {row["status"] for row in log} == {"unsent"}
    assert len(unsent) == 2


def _orphan(entity_id: str, created_at_s: float) -> Alert:
    return Alert(
        alert_id=uuid.uuid4().hex,
        event=AlertEvent.THRESHOLD,
        entity_type="team",
        entity_id=entity_id,
        entity_name=entity_id,
        window="1d",
        budget_duration="1d",
        period_start_s=int(created_at_s) // 86_400 * 86_400,
        period_end_s=int(created_at_s) // 86_400 * 86_400 + 86_400,
        threshold="0.8",
        spend_nanos=80,
        max_budget_nanos=100,
        soft_budget_nanos=None,
        created_at_us=int(created_at_s * 1_000_000),
    )


async def test_alerts_claimed_by_a_crashed_instance_are_sent_at_start_up(
    alerting_gateways: Callable[..., AlertingGateway], receiver: WebhookReceiver
) -> None:
    """A crash between claim and delivery leaves a pending alert: the next start-up sends it once its lease has
    run out. Alerts older than a day, and ones another instance is still delivering (lease), are left alone."""
    gateway = alerting_gateways()
    engine = create_engine(f"sqlite+aiosqlite:///{gateway.db_path}")
    try:
        await upgrade_schema(engine)
        store = SqlAlertStore(engine)
        now_s = time.time()
        orphan, stale, leased = (
            _orphan("orphan", now_s - 60),
            _orphan("stale", now_s - 2 * 86_400),
            _orphan("busy", now_s),
        )
        assert await store.claim(orphan, lease_until_us=int((now_s - 1) * 1_000_000))
        assert await store.claim(stale, lease_until_us=0)
        assert await store.claim(leased, lease_until_us=int((now_s + 600) * 1_000_000))
    finally:
        await engine.dispose()
    with gateway:
        alerts = await eventually(receiver.alerts, lambda alerts: len(alerts) >= 1)
        await settle_quietly()
        log = {row["entity_id"]: row for row in await alert_log(gateway, entity_type="team")}
    assert [alert["alert_id"] for alert in receiver.alerts()] == [orphan.alert_id]
    assert alerts[0]["entity_id"] == "orphan" and alerts[0]["threshold"] == 0.8
    assert {name: row["status"] for name, row in log.items()} == {
        "orphan": "delivered",
        "stale": "pending",
        "busy": "pending",
    }
