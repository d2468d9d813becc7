"""Requests, tokens, spend, upstream latency and holds as ``GET /metrics`` shows them, through the real gateway."""

from __future__ import annotations

import httpx

from tests.api.metrics.support import NANOS_PER_USD, chat, client, new_key, new_team, scrape
from tests.support.gateway import (
    CHAT_MODEL,
    DRIP_MODEL,
    EMBEDDING_MODEL,
    FAILING_MODEL,
    GatewayServer,
)


async def test_requests_metrics_count_each_request_and_its_exact_spend_and_tokens(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """After N requests the team's series show exactly N requests, the ledger's spend to the nano and the
    upstream's token usage (spend is summed in integer nanos, converted once)."""
    team = await new_team(admin)
    secret = (await new_key(admin, team_id=team))["key"]
    costs, prompt_tokens, completion_tokens = [], 0, 0
    for max_tokens in (1, 2, 3, 5, 8, 13):
        response = await chat(gateway, secret, model=CHAT_MODEL, max_tokens=max_tokens)
        assert response.status_code == 200, response.text
        costs.append(int(response.headers["x-ledgergate-cost-nanos"]))
        prompt_tokens += response.json()["usage"]["prompt_tokens"]
        completion_tokens += response.json()["usage"]["completion_tokens"]

    metrics = await scrape(gateway)

    [requests] = metrics.series("ledgergate_requests_total", team=team)
    assert requests.labels == {"route": "chat.completions", "model": CHAT_MODEL, "status": "success", "team": team}
    assert requests.value == len(costs)
    assert metrics.value("ledgergate_spend_usd_total", team=team) == sum(costs) / NANOS_PER_USD
    assert metrics.value("ledgergate_tokens_total", team=team, direction="prompt") == prompt_tokens
    assert metrics.value("ledgergate_tokens_total", team=team, direction="completion") == completion_tokens


async def test_requests_metrics_split_by_route_and_status(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """Embeddings and failed upstream calls are their own series: a failure never hides among successes."""
    team = await new_team(admin)
    secret = (await new_key(admin, team_id=team))["key"]
    async with client(gateway, secret) as caller:
        embedded = await caller.post("/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "hello"})
    assert embedded.status_code == 200, embedded.text
    failed = await chat(gateway, secret, model=FAILING_MODEL)
    assert failed.status_code == 500, failed.text

    metrics = await scrape(gateway)

    assert metrics.value("ledgergate_requests_total", team=team, route="embeddings", status="success") == 1
    assert metrics.value("ledgergate_requests_total", team=team, model=FAILING_MODEL, status="error") == 1
    assert len(metrics.series("ledgergate_requests_total", team=team)) == 2


async def test_upstream_latency_histogram_observes_every_upstream_reply(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """The latency histogram counts one observation per request that got an upstream reply, JSON and stream."""
    secret = (await new_key(admin))["key"]
    before = await scrape(gateway)
    json_requests, streams = 3, 2
    for _ in range(json_requests):
        assert (await chat(gateway, secret, model=CHAT_MODEL)).status_code == 200
    for _ in range(streams):
        assert (await chat(gateway, secret, model=CHAT_MODEL, stream=True)).status_code == 200

    after = await scrape(gateway)

    name = "ledgergate_upstream_latency_seconds_count"
    assert after.value(name, model=CHAT_MODEL) - before.value(name, model=CHAT_MODEL) == json_requests + streams
    inf_bucket = after.value("ledgergate_upstream_latency_seconds_bucket", model=CHAT_MODEL, le="+Inf")
    assert inf_bucket == after.value(name, model=CHAT_MODEL)
    assert after.value("ledgergate_upstream_latency_seconds_sum", model=CHAT_MODEL) > 0


async def test_holds_gauge_counts_requests_in_flight_and_returns_to_zero(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A streaming request holds budget while it runs; once it finished the gauge is back to 0 (no leaked hold)."""
    secret = (await new_key(admin, max_budget=10))["key"]
    body = {"model": DRIP_MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with client(gateway, secret) as caller, caller.stream("POST", "/v1/chat/completions", json=body) as stream:
        assert stream.status_code == 200
        chunks = stream.aiter_bytes()
        await anext(chunks)  # the request is admitted and streaming
        during = await scrape(gateway)
        async for _ in chunks:
            pass

    after = await scrape(gateway)

    assert during.value("ledgergate_holds_in_flight") >= 1
    assert after.value("ledgergate_holds_in_flight") == 0
