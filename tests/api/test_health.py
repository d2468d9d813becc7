"""Health probes of the running gateway."""

from __future__ import annotations

import httpx

from tests.support.gateway import GatewayServer


async def test_health_liveliness_and_readiness_answer_200(gateway: GatewayServer) -> None:
    """Load balancers and orchestrators probe these without a key: both must answer 200 once started."""
    async with httpx.AsyncClient(base_url=gateway.base_url) as client:
        live = await client.get("/health/liveliness")
        ready = await client.get("/health/readiness")
    assert live.status_code == 200, live.text
    assert live.json()["status"] == "healthy"
    assert ready.status_code == 200, ready.text
    assert ready.json()["db"] == "connected"
