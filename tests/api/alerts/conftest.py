"""Fixtures of the alert tests: a real webhook receiver and gateways configured to call it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.alerts.receiver import WebhookReceiver
from tests.api.alerts.support import AlertingGateway
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def receiver(receiver_server: WebhookReceiver) -> WebhookReceiver:
    receiver_server.reset()
    return receiver_server


@pytest.fixture
def alerting_gateways(
    tmp_path: Path, fake_upstream: FakeUpstream, receiver: WebhookReceiver
) -> Iterator[Callable[..., AlertingGateway]]:
    """Build (not start) gateways whose webhook is ``receiver``; every one still running is stopped at teardown."""
    servers: list[AlertingGateway] = []

    def build(db_path: Path | None = None, **alerting: Any) -> AlertingGateway:
        workdir = tmp_path / f"gateway-{len(servers)}"
        workdir.mkdir()
        server = AlertingGateway(
            workdir, fake_upstream.base_url, alerting={"webhook_url": receiver.url, **alerting}, db_path=db_path
        )
        servers.append(server)
        return server

    yield build
    for server in servers:
        server.stop()
