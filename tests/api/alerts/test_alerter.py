"""The alerter inside one process (the real container on a SQLite file, the real receiver): per-entity
thresholds, the global proxy budget, the response path, and what a shutdown leaves for the next start."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ledgergate.config import load_config
from ledgergate.container import Container, build_container
from ledgergate.domain.entities import Entity
from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.pricing import Usage
from ledgergate.services.request_charging import LlmCall, Ticket
from tests.api.alerts.receiver import WebhookReceiver
from tests.api.alerts.support import FAST_ALERTING, eventually, settle_quietly
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import FLAT_MODEL, gateway_config
from tests.support.timing import scaled

Build = Callable[[], Awaitable[Container]]


@pytest.fixture
async def containers(tmp_path: Path, fake_upstream: FakeUpstream, receiver: WebhookReceiver) -> AsyncIterator[Build]:
    """Containers on one SQLite file with a global budget of 50_000 nanos; all closed at teardown."""
    document = gateway_config(fake_upstream.base_url, f"sqlite+aiosqlite:///{tmp_path / 'lg.db'}", "standard")
    document["general_settings"]["max_budget"] = 0.00005
    document["general_settings"]["alerting"] = {**FAST_ALERTING, "webhook_url": receiver.url}
    path = tmp_path / "ledgergate.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    config = load_config(path, environ={})
    opened: list[Container] = []

    async def build() -> Container:
        opened.append(await build_container(config))
        return opened[-1]

    yield build
    for container in opened:
        await container.aclose()


async def _key(container: Container, **fields: Any) -> Entity:
    created = await container.keys.generate(fields)
    if "alert_thresholds" in fields:
        # KeyService.generate replaces extra (where alert_thresholds lives) by {"key_name": ...}: set it by update.
        await container.keys.update(created["key"], {"alert_thresholds": fields["alert_thresholds"]})
    return await container.keys.get(created["key"])


async def _charge(container: Container, key: Entity, output_tokens: int) -> Ticket:
    deployment = container.router.pick(FLAT_MODEL)
    assert deployment is not None
    call = LlmCall(uuid.uuid4().hex, "/v1/chat/completions", FLAT_MODEL, deployment, 10, output_tokens)
    ticket = await container.charger.admit(key, call)
    assert isinstance(ticket, Ticket)
    await container.charger.settle(
        ticket, Usage(prompt_tokens=10, completion_tokens=output_tokens), RequestStatus.SUCCESS
    )
    return ticket


async def test_alerter_uses_the_entity_thresholds_and_alerts_the_global_budget(
    containers: Build, receiver: WebhookReceiver
) -> None:
    """An entity's own alert_thresholds replace the default for its windows only; the global proxy budget
    alerts as entity "global" with the configured default thresholds."""
    container = await containers()
    key = await _key(container, max_budget=0.00005, alert_thresholds=[0.5])
    await _charge(container, key, 13)  # 26k: 52% of the key and of the global budget
    await container.alerter.wait_idle()
    assert [(a["entity"], a["threshold"]) for a in receiver.alerts()] == [("key", 0.5)]
    await _charge(container, key, 13)  # 52k: 104% of both, but the key alerts at 50% only
    await container.alerter.wait_idle()
    alerts = receiver.alerts()
    assert sorted((a["entity"], a["threshold"]) for a in alerts[1:]) == [
        ("global", 0.8),
        ("global", 0.9),
        ("global", 1.0),
    ]
    assert {a["entity_name"] for a in alerts[1:]} == {"proxy"}
    view = await container.keys.view(key)
    assert view["alert_thresholds"] == [0.5]


async def test_alerter_never_delays_the_settle(containers: Build, receiver: WebhookReceiver) -> None:
    """The webhook is sent off the response path: settle returns while the receiver has answered no POST (it
    holds every answer), so it waited for none; timed as "did not hang" only, never as a speed."""
    container = await containers()
    key = await _key(container, max_budget=0.00002)
    receiver.hold_answers()
    answered_before = receiver.answers_sent()
    await asyncio.wait_for(_charge(container, key, 10), scaled(30.0))  # 100% of the key: three alerts to send
    assert receiver.answers_sent() == answered_before
    receiver.release_answers()
    alerts = await eventually(receiver.alerts, lambda alerts: len(alerts) >= 3)
    assert sorted(a["threshold"] for a in alerts) == [0.8, 0.9, 1.0]


async def test_alerter_shutdown_leaves_interrupted_deliveries_to_the_next_start(
    containers: Build, receiver: WebhookReceiver
) -> None:
    """A delivery cut short by a shutdown gives its lease back: the next start sends it at once, so it is
    delivered (possibly twice: receivers deduplicate on alert_id / x-ledgergate-alert-id)."""
    receiver.delay_s = 30.0
    first = await containers()
    key = await _key(first, max_budget=0.00002)
    await _charge(first, key, 8)  # 80%
    await eventually(receiver.posts, lambda posts: len(posts) >= 1)
    await first.aclose()  # waits SHUTDOWN_GRACE_S for the hanging POST, then cancels it
    pending = await first.alerter.store.list()
    assert [(a.status, a.attempts) for a in pending] == [("pending", 0)]
    receiver.delay_s = 0.0
    second = await containers()
    await eventually(receiver.alerts, lambda alerts: len(alerts) >= 1)
    await settle_quietly()
    await second.alerter.wait_idle()
    rows = await second.alerter.store.list()
    assert [(a.alert_id, a.status, a.attempts) for a in rows] == [(pending[0].alert_id, "delivered", 1)]
    assert {post["json"]["alert_id"] for post in receiver.posts()} == {pending[0].alert_id}
