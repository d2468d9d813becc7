"""A real gateway per module over the greedy fake upstream (``parametrize("gateway", ["strict"], indirect=True)``
picks strict mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.api.helpers import admin_client
from tests.api.holds.support import greedy_gateway
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import BudgetModeName, GatewayServer


@pytest.fixture(scope="module")
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream
) -> Iterator[GatewayServer]:
    budget_mode: BudgetModeName = getattr(request, "param", "standard")
    workdir = tmp_path_factory.mktemp(f"holds-{budget_mode}")
    with greedy_gateway(workdir, fake_upstream.base_url, budget_mode) as server:
        yield server


@pytest.fixture
async def admin(gateway: GatewayServer) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(gateway) as client:
        yield client
