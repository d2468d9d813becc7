"""Which entities label the request, token and spend series: bounded by configuration, never a secret."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

import httpx

from ledgergate.services.metrics import KEY_HASH_PREFIX_CHARS
from tests.api.metrics.support import MetricsGateway, chat, client, new_key, new_team, scrape
from tests.support.gateway import FLAT_MODEL, GatewayServer

CUSTOMERS = 200
CONCURRENCY = 20
HELLO = {"role": "user", "content": "hi"}


async def _as_customers(gateway: GatewayServer, secret: str, prefix: str) -> None:
    """One request per distinct customer (the request's ``user`` field)."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with client(gateway, secret) as caller:

        async def one(index: int) -> None:
            body = {"model": FLAT_MODEL, "max_tokens": 1, "user": f"{prefix}-{index}", "messages": [HELLO]}
            async with limit:
                response = await caller.post("/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text

        await asyncio.gather(*(one(index) for index in range(CUSTOMERS)))


async def test_label_customers_are_not_series_by_default(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """200 distinct customers add no series with the default labels (model, team): one series, 200 requests."""
    team = await new_team(admin)
    secret = (await new_key(admin, team_id=team))["key"]
    await _as_customers(gateway, secret, team)

    metrics = await scrape(gateway)

    [requests] = metrics.series("ledgergate_requests_total", team=team)
    assert requests.value == CUSTOMERS
    assert set(requests.labels) == {"route", "status", "model", "team"}
    assert len(metrics.series("ledgergate_spend_usd_total", team=team)) == 1


async def test_label_entities_are_series_when_configured(metrics_gateway: Callable[..., MetricsGateway]) -> None:
    """With customer, key and tag labels configured each value is a series of its own; a key is named by its
    alias or its hash's first characters, and its secret appears nowhere in the exposition; a request with
    two tags counts in each tag's series."""
    gateway = metrics_gateway(metrics_labels=["key", "tag", "customer"])
    async with client(gateway) as admin:
        anonymous = await new_key(admin, key_alias=None, tags=["blue", "green"])
        aliased = await new_key(admin)
    await _as_customers(gateway, anonymous["key"], "c")
    assert (await chat(gateway, aliased["key"])).status_code == 200

    metrics = await scrape(gateway)

    key_hash = hashlib.sha256(anonymous["key"].encode()).hexdigest()[:KEY_HASH_PREFIX_CHARS]
    requests = metrics.series("ledgergate_requests_total", key=key_hash)
    assert len(requests) == 2 * CUSTOMERS  # each customer once per tag
    assert {s.labels["customer"] for s in requests} == {f"c-{index}" for index in range(CUSTOMERS)}
    assert metrics.value("ledgergate_requests_total", key=key_hash, tag="blue") == CUSTOMERS
    assert metrics.value("ledgergate_requests_total", key=key_hash, tag="green") == CUSTOMERS
    [other] = metrics.series("ledgergate_requests_total", key=aliased["key_alias"])
    assert other.labels == {
        "route": "chat.completions",
        "status": "success",
        "key": aliased["key_alias"],
        "tag": "",
        "customer": "",
    }
    assert "model" not in other.labels  # not configured: no label
    assert anonymous["key"] not in metrics.text and aliased["key"] not in metrics.text
    assert metrics.series("ledgergate_upstream_latency_seconds_count", model=FLAT_MODEL)
