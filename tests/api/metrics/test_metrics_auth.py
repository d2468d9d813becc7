"""Who may scrape ``GET /metrics``: proxy admins and viewers by default (``metrics_auth: admin``); anyone with
``metrics_auth: none`` (or the older ``metrics_require_auth: false``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.metrics.support import MetricsGateway, client, scrape
from tests.support.gateway import MASTER_KEY


async def _user_key(admin: httpx.AsyncClient, role: str) -> str:
    response = await admin.post("/user/new", json={"user_role": role})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return str(body["key"])


async def test_metrics_auth_none_lets_a_scraper_without_a_key_read(
    metrics_gateway: Callable[..., MetricsGateway],
) -> None:
    """``metrics_auth: none`` (and the older ``metrics_require_auth: false``) serve a Prometheus without a key."""
    for settings in ({"metrics_auth": "none"}, {"metrics_require_auth": False}):
        gateway = metrics_gateway(**settings)
        assert (await scrape(gateway, secret=None)).series("ledgergate_holds_in_flight"), settings


@pytest.mark.parametrize("settings", [{}, {"metrics_auth": "admin"}, {"metrics_require_auth": True}])
async def test_metrics_are_unauthenticated_by_default_bug_metrics_need_an_admin_or_viewer_key(
    metrics_gateway: Callable[..., MetricsGateway], settings: dict[str, Any]
) -> None:
    """Regression (issue 12: /metrics was unauthenticated by default). By default, as with ``metrics_auth: admin``,
    no key is a 401, an internal user's key a 403 (spend per team is not theirs to read), a proxy admin viewer's
    key and the master key are served."""
    gateway = metrics_gateway(**settings)
    async with client(gateway) as admin:
        viewer = await _user_key(admin, "proxy_admin_viewer")
        internal = await _user_key(admin, "internal_user")
    for secret, status in ((None, 401), ("sk-unknown", 401), (internal, 403), (viewer, 200), (MASTER_KEY, 200)):
        async with client(gateway, secret) as caller:
            response = await caller.get("/metrics")
        assert response.status_code == status, (secret, response.text)
        if status != 200:
            assert response.json()["error"]["type"] in ("authentication_error", "permission_error")
