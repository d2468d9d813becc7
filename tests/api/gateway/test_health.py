"""Health probes of the running gateway."""

from __future__ import annotations

import httpx

from tests.support.fake_upstream import FakeUpstream
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


async def test_health_answers_like_readiness_without_a_key_or_upstream_call(
    gateway: GatewayServer, fake_upstream: FakeUpstream
) -> None:
    """GET /health (LiteLLM users try it first) answers 200 with the readiness body, needs no key, ignores a
    bad one, and does not call any upstream model (LiteLLM's /health spends tokens on every model)."""
    async with httpx.AsyncClient(base_url=gateway.base_url) as client:
        received_before = len(fake_upstream.received())
        anonymous = await client.get("/health")
        with_bad_key = await client.get("/health", headers={"Authorization": "Bearer sk-not-a-key"})
        ready = await client.get("/health/readiness")
    assert anonymous.status_code == 200, anonymous.text
    assert anonymous.json() == ready.json()
    assert anonymous.json()["status"] == "healthy" and anonymous.json()["db"] == "connected"
    assert with_bad_key.status_code == 200
    assert len(fake_upstream.received()) == received_before


async def test_health_refuses_writes(gateway: GatewayServer) -> None:
    """POST /health is 405 with a JSON body, not a 5xx."""
    async with httpx.AsyncClient(base_url=gateway.base_url) as client:
        response = await client.post("/health")
    assert response.status_code == 405
