"""``counter_fallback: database`` in a real gateway process: while its Redis is cut off, LLM requests are served
(not 503) within the key's budget, and when Redis returns its counters are rebuilt from the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import (
    REQUEST_COST_NANOS,
    GatewayProcess,
    TestDatabase,
    cluster_config,
    unique_prefix_name,
    usd_for_requests,
)
from tests.e2e.test_cache_coherence import RedisProxy
from tests.e2e.traffic import chat, http_client, key_spend_nanos, new_key
from tests.storage.contract.services import check_redis, delete_prefixed, redis_client
from tests.support.fake_upstream import FakeUpstream
from tests.support.timing import scaled, until


@pytest.fixture
def database() -> Iterator[TestDatabase]:
    database = TestDatabase()
    database.create()
    try:
        yield database
    finally:
        database.drop()


async def _until_mode(database: TestDatabase, mode: str) -> None:
    async def in_mode() -> bool:
        return bool((await database.fetchrow("SELECT mode FROM counter_store_mode"))[0] == mode)

    await until(in_mode, f"counter store mode {mode}", within_s=30, poll_s=0.05)


async def test_gateway_fallback_serves_within_budget_while_redis_is_down(
    tmp_path: Path, fake_upstream: FakeUpstream, database: TestDatabase
) -> None:
    """Redis unreachable: requests keep being served through PostgreSQL, the key's budget for 5 requests serves
    exactly 5 (2 before the outage, 3 during), and after Redis returns it still refuses the 6th."""
    await check_redis()
    proxy = RedisProxy()
    await proxy.start()
    prefix_name = unique_prefix_name()
    document = cluster_config(fake_upstream.base_url, database.name, prefix_name, hold_ttl_s=30)
    document["general_settings"] |= {"redis_url": proxy.url, "counter_fallback": "database"}
    gateway = GatewayProcess("fallback", tmp_path, document)
    try:
        await gateway.start_async()
        async with http_client() as http:
            secret, token = await new_key(http, gateway, max_budget=usd_for_requests(5))
            assert [(await chat(http, gateway, secret)).status for _ in range(2)] == [200, 200]
            await proxy.cut()
            assert [(await chat(http, gateway, secret)).status for _ in range(5)] == [200] * 3 + [429] * 2
            await _until_mode(database, "database")
            assert await key_spend_nanos(http, gateway, secret) == 5 * REQUEST_COST_NANOS
            assert await database.key_ledger(token) == (5, 5 * REQUEST_COST_NANOS)
            await proxy.start()
            await _until_mode(database, "redis")
            await asyncio.sleep(scaled(2.0))  # the switch's fence (3 polls of 0.5 s): then Redis admits again
            assert (await chat(http, gateway, secret)).status == 429
            assert await key_spend_nanos(http, gateway, secret) == 5 * REQUEST_COST_NANOS
    finally:
        await asyncio.to_thread(gateway.stop)
        await proxy.cut()
        admin = redis_client()
        await delete_prefixed(admin, f"{prefix_name}:{{{prefix_name}}}:")
        await admin.aclose()
