"""Who may scrape ``GET /metrics``: anyone by default; proxy admins and viewers with metrics_require_auth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.metrics.support import MetricsGateway, client, scrape
from tests.support.gateway import MASTER_KEY, GatewayServer


async def _user_key(admin: httpx.AsyncClient, role: str) -> str:
    response = await admin.post("/user/new", json={"user_role": role})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return str(body["key"])


async def test_metrics_auth_is_open_by_default(gateway: GatewayServer) -> None:
    """A Prometheus server scrapes without a key unless the config asks for one."""
    assert (await scrape(gateway, secret=None)).series("ledgergate_holds_in_flight")


async def test_metrics_auth_required_admits_only_proxy_admins_and_viewers(
    metrics_gateway: Callable[..., MetricsGateway],
) -> None:
    """With metrics_require_auth no key is a 401, an internal user's key a 403 (spend per team is not theirs to
    read), a proxy admin viewer's key and the master key are served."""
    gateway = metrics_gateway(metrics_require_auth=True)
    async with client(gateway) as admin:
        viewer = await _user_key(admin, "proxy_admin_viewer")
        internal = await _user_key(admin, "internal_user")
    for secret, status in ((None, 401), ("sk-unknown", 401), (internal, 403), (viewer, 200), (MASTER_KEY, 200)):
        async with client(gateway, secret) as caller:
            response = await caller.get("/metrics")
        assert response.status_code == status, (secret, response.text)
        if status != 200:
            assert response.json()["error"]["type"] in ("authentication_error", "permission_error")
