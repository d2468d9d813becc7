"""Fixtures of the metrics tests: the module's default gateway, and private ones with metrics settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.metrics.support import MetricsGateway, client
from tests.support.fake_upstream import FakeUpstream
from tests.support.fixtures import gateway
from tests.support.gateway import GatewayServer

__all__ = ["admin", "gateway", "metrics_gateway"]


@pytest.fixture
async def admin(gateway: GatewayServer) -> AsyncIterator[httpx.AsyncClient]:
    async with client(gateway) as caller:
        yield caller


@pytest.fixture
def metrics_gateway(tmp_path: Path, fake_upstream: FakeUpstream) -> Iterator[Callable[..., MetricsGateway]]:
    """Start gateways with the given ``general_settings``; every one is stopped at teardown."""
    servers: list[MetricsGateway] = []

    def start(**settings: Any) -> MetricsGateway:
        workdir = tmp_path / f"gateway-{len(servers)}"
        workdir.mkdir()
        server = MetricsGateway(workdir, fake_upstream.base_url, **settings)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
