"""``ledgergate_budget_remaining_usd``: what is left of the most spent windows, read at scrape time."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.api.metrics.support import NANOS_PER_USD, MetricsGateway, chat, client, new_key, new_team, scrape
from tests.support.gateway import FLAT_OUTPUT_NANOS_PER_TOKEN, GatewayServer

REMAINING = "ledgergate_budget_remaining_usd"


async def _spend(gateway: GatewayServer, secret: str, requests: int, tokens: int = 4) -> int:
    """``requests`` chat requests of ``tokens`` output tokens each; returns their cost in nanos."""
    for _ in range(requests):
        response = await chat(gateway, secret, max_tokens=tokens)
        assert response.status_code == 200, response.text
    return requests * tokens * FLAT_OUTPUT_NANOS_PER_TOKEN


async def test_budget_remaining_reflects_a_keys_window(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """A key's daily window shows max_budget minus the period's spend, named by the key's alias, per window."""
    key = await new_key(
        admin, max_budget=1, budget_duration="1d", budget_limits=[{"max_budget": 5, "budget_duration": "1h"}]
    )
    spent = await _spend(gateway, key["key"], 3)

    metrics = await scrape(gateway)

    day = metrics.series(REMAINING, entity_type="key", entity_id=key["key_alias"], window="1d")
    hour = metrics.series(REMAINING, entity_type="key", entity_id=key["key_alias"], window="1h")
    assert [sample.value for sample in day] == [(NANOS_PER_USD - spent) / NANOS_PER_USD]
    assert [sample.value for sample in hour] == [(5 * NANOS_PER_USD - spent) / NANOS_PER_USD]


async def test_budget_remaining_shows_only_the_top_n_windows_by_spend(
    metrics_gateway: Callable[..., MetricsGateway],
) -> None:
    """With metrics_top_n: 2, the two most spent windows are series and no other: cardinality stays bounded
    however many budgeted entities are active; an entity without a limit is never one."""
    gateway = metrics_gateway(metrics_top_n=2)
    async with client(gateway) as admin:
        team = await new_team(admin, max_budget=100)
        most = await new_key(admin, max_budget=1, budget_duration="30d", team_id=team)
        least = await new_key(admin, max_budget=1, budget_duration="30d")
        unlimited = await new_key(admin)
    most_spent = await _spend(gateway, most["key"], 3)
    await _spend(gateway, least["key"], 1)
    await _spend(gateway, unlimited["key"], 5)

    metrics = await scrape(gateway)

    shown = {
        (s.labels["entity_type"], s.labels["entity_id"], s.labels["window"]): s.value for s in metrics.series(REMAINING)
    }
    assert shown == {
        ("key", most["key_alias"], "30d"): (NANOS_PER_USD - most_spent) / NANOS_PER_USD,
        ("team", team, "lifetime"): (100 * NANOS_PER_USD - most_spent) / NANOS_PER_USD,
    }


async def test_budget_remaining_is_off_with_top_n_zero(metrics_gateway: Callable[..., MetricsGateway]) -> None:
    """metrics_top_n: 0 turns the budget series off."""
    gateway = metrics_gateway(metrics_top_n=0)
    async with client(gateway) as admin:
        key = await new_key(admin, max_budget=1)
    await _spend(gateway, key["key"], 1)
    assert (await scrape(gateway)).series(REMAINING) == []
