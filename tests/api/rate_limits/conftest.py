"""Fixtures of the rate-limit tests: gateways on a clock the test moves (see harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import admin_client
from tests.api.rate_limits.harness import ShiftedClock, clocked_gateways, new_gateway
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayServer


@pytest.fixture(scope="module")
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture(scope="module")
def gateway(
    clock: ShiftedClock, tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream
) -> Iterator[GatewayServer]:
    """One embedded gateway (SQLite, in-process counters) per module, on ``clock``; tests use their own keys."""
    with clocked_gateways(clock), new_gateway(tmp_path_factory.mktemp("rl"), fake_upstream.base_url) as server:
        yield server


@pytest.fixture
async def admin(gateway: GatewayServer) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(gateway) as client:
        yield client


@pytest.fixture
def private_gateways(
    clock: ShiftedClock, tmp_path: Path, fake_upstream: FakeUpstream
) -> Iterator[Callable[..., GatewayServer]]:
    """Gateways of one test (e.g. to restart, or to share PostgreSQL and Redis); stopped at teardown."""
    servers: list[GatewayServer] = []
    with clocked_gateways(clock):

        def make(**general_settings: object) -> GatewayServer:
            server = new_gateway(tmp_path / f"gw{len(servers)}", fake_upstream.base_url, **general_settings)
            servers.append(server)
            return server

        yield make
        for server in servers:
            server.stop()
