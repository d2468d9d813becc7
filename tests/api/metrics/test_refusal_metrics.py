"""``ledgergate_admissions_refused_total{reason}``: one bump per refused LLM request, under the refusal's reason."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx

from ledgergate.services.metrics import RefusalReason
from tests.api.metrics.support import MetricsGateway, chat, client, new_key, new_team, scrape
from tests.support.gateway import CHAT_MODEL, FLAT_MODEL, GatewayServer
from tests.support.timing import fresh_period_async

REFUSED = "ledgergate_admissions_refused_total"


async def _refused(gateway: GatewayServer, reason: RefusalReason) -> float:
    return (await scrape(gateway)).value(REFUSED, reason=reason.value)


async def test_refused_metric_shows_every_reason_from_the_start(gateway: GatewayServer) -> None:
    """Each reason is a series before its first refusal, so rate() sees the first one too."""
    metrics = await scrape(gateway)
    assert {sample.labels["reason"] for sample in metrics.series(REFUSED)} == {reason.value for reason in RefusalReason}


async def test_refused_metric_counts_a_budget_refusal(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """A 429 budget_exceeded bumps reason=budget_exceeded by exactly one."""
    secret = (await new_key(admin, max_budget=0))["key"]
    before = await _refused(gateway, RefusalReason.BUDGET_EXCEEDED)
    response = await chat(gateway, secret)
    assert response.status_code == 429 and response.json()["error"]["type"] == "budget_exceeded", response.text
    assert await _refused(gateway, RefusalReason.BUDGET_EXCEEDED) == before + 1


async def test_refused_metric_counts_a_rate_limit_refusal(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """A 429 rate_limit_exceeded is told apart from a budget refusal."""
    await fresh_period_async(60, needed_s=15)  # both requests in one minute of the wall clock: rpm_limit 1 refuses
    secret = (await new_key(admin, rpm_limit=1))["key"]
    assert (await chat(gateway, secret)).status_code == 200
    before = await scrape(gateway)
    response = await chat(gateway, secret)
    assert response.status_code == 429 and response.json()["error"]["type"] == "rate_limit_exceeded", response.text
    after = await scrape(gateway)
    assert after.value(REFUSED, reason="rate_limit_exceeded") == before.value(REFUSED, reason="rate_limit_exceeded") + 1
    assert after.value(REFUSED, reason="budget_exceeded") == before.value(REFUSED, reason="budget_exceeded")


async def test_refused_metric_counts_auth_model_and_blocked_refusals(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """An unknown key, a model the key may not use and a blocked team each count under their own reason."""
    limited = (await new_key(admin, models=[FLAT_MODEL]))["key"]
    blocked_team = await new_team(admin, blocked=True)
    in_blocked_team = (await new_key(admin, team_id=blocked_team))["key"]
    before = await scrape(gateway)

    assert (await chat(gateway, "sk-not-a-key")).status_code == 401
    assert (await chat(gateway, limited, model=CHAT_MODEL)).status_code == 403
    assert (await chat(gateway, in_blocked_team)).status_code == 403

    after = await scrape(gateway)
    for reason in ("unauthorized", "model_not_allowed", "blocked"):
        assert after.value(REFUSED, reason=reason) == before.value(REFUSED, reason=reason) + 1, reason
    assert after.value("ledgergate_requests_total") == before.value("ledgergate_requests_total")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_refused_metric_counts_counter_store_outages(metrics_gateway: Callable[..., MetricsGateway]) -> None:
    """A request refused with 503 because the counter store (Redis) is unreachable counts as
    counter_store_unavailable, and the scrape itself still answers (holds gauge unknown, not 0)."""
    gateway = metrics_gateway(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    async with client(gateway) as admin:
        secret = (await new_key(admin))["key"]
    response = await chat(gateway, secret)
    assert response.status_code == 503, response.text
    metrics = await scrape(gateway)
    assert metrics.value(REFUSED, reason="counter_store_unavailable") == 1
    [holds] = metrics.series("ledgergate_holds_in_flight")
    assert holds.value != holds.value  # NaN
