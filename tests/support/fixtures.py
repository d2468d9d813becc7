"""Shared pytest fixtures; ``tests/conftest.py`` imports them so every test package can request them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import BudgetModeName, GatewayServer


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    """One mock provider for the whole session; call ``.reset()`` before asserting on ``.received()``."""
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream
) -> Iterator[GatewayServer]:
    """One real gateway per module (own SQLite file); ``parametrize("gateway", ["strict"], indirect=True)``
    picks the budget mode. Tests sharing it must use their own keys."""
    budget_mode: BudgetModeName = getattr(request, "param", "standard")
    workdir = tmp_path_factory.mktemp(f"gateway-{budget_mode}")
    with GatewayServer(workdir, fake_upstream.base_url, budget_mode=budget_mode) as server:
        yield server


@pytest.fixture
def gateway_factory(tmp_path: Path, fake_upstream: FakeUpstream) -> Iterator[Callable[..., GatewayServer]]:
    """Start private gateways (e.g. to restart them); every one still running is stopped at teardown."""
    servers: list[GatewayServer] = []

    def start(budget_mode: BudgetModeName = "standard") -> GatewayServer:
        workdir = tmp_path / f"gateway-{len(servers)}"
        workdir.mkdir()
        server = GatewayServer(workdir, fake_upstream.base_url, budget_mode=budget_mode).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
