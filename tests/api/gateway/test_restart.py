"""A restart on the same database loses nothing and forgives nothing: spend comes back from the ledger."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.api.helpers import admin_client, bearer_client, chat_body, key_info, new_key, spend_logs, usd
from tests.support.gateway import FLAT_MODEL, FLAT_OUTPUT_NANOS_PER_TOKEN, GatewayServer

TOKENS = 10
COST_NANOS = TOKENS * FLAT_OUTPUT_NANOS_PER_TOKEN


async def _chat(gateway: GatewayServer, secret: str) -> httpx.Response:
    async with bearer_client(gateway, secret) as client:
        return await client.post("/v1/chat/completions", json=chat_body("go", FLAT_MODEL, max_tokens=TOKENS))


async def test_restart_keeps_spend_and_still_refuses_an_exhausted_key(
    gateway_factory: Callable[..., GatewayServer],
) -> None:
    """Counters are rebuilt from the ledger after a restart, exactly (not additively, not from zero): a key
    over budget before the restart is still refused after it, and a key under budget keeps counting on."""
    gateway = gateway_factory()
    async with admin_client(gateway) as admin:
        exhausted = await new_key(admin, max_budget=usd(COST_NANOS // 2), budget_duration="1h")
        lifetime = await new_key(admin, max_budget=1, budget_limits=[{"budget_duration": "1d", "max_budget": 1}])
    assert (await _chat(gateway, exhausted["key"])).status_code == 200
    assert (await _chat(gateway, exhausted["key"])).status_code == 429
    for _ in range(3):
        assert (await _chat(gateway, lifetime["key"])).status_code == 200
    async with admin_client(gateway) as admin:
        logs_before = {key["token"]: await spend_logs(admin, key["key"]) for key in (exhausted, lifetime)}

    gateway.restart()

    async with admin_client(gateway) as admin:
        exhausted_info = await key_info(admin, exhausted["token"])
        assert exhausted_info["spend"] == exhausted_info["lifetime_spend"] == usd(COST_NANOS)
        refused = await _chat(gateway, exhausted["key"])
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert (error["type"], error["entity_id"], error["spend"]) == (
            "budget_exceeded",
            exhausted["token"],
            usd(COST_NANOS),
        )
        lifetime_info = await key_info(admin, lifetime["token"])
        assert lifetime_info["spend"] == lifetime_info["budget_limits"][0]["spend"] == usd(3 * COST_NANOS)
        assert (await _chat(gateway, lifetime["key"])).status_code == 200
        lifetime_info = await key_info(admin, lifetime["token"])
        assert lifetime_info["spend"] == lifetime_info["budget_limits"][0]["spend"] == usd(4 * COST_NANOS)
        assert await spend_logs(admin, exhausted["key"]) == logs_before[exhausted["token"]]
        assert len(await spend_logs(admin, lifetime["key"])) == len(logs_before[lifetime["token"]]) + 1
