"""Rate limits across restarts and across instances: a restart forgives nothing of the minute, and two
gateways sharing PostgreSQL and Redis enforce one limit jointly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from tests.api.helpers import admin_client, bearer_client, chat_body, marker
from tests.api.rate_limits.harness import ShiftedClock, chat, chats, new_key, rate_limit_error
from tests.e2e.cluster import TestDatabase
from tests.storage.contract.services import REDIS_URL, check_redis, delete_prefixed, redis_client
from tests.support.gateway import DRIP_MODEL, GatewayServer

GatewayMaker = Callable[..., GatewayServer]


async def test_restart_keeps_the_minutes_request_count(private_gateways: GatewayMaker, clock: ShiftedClock) -> None:
    """rpm_limit 3, three requests, restart: the 4th request of the minute is still refused (the counter is
    rebuilt from the ledger), and the view shows the 3 requests."""
    clock.start_of_minute()
    gateway = private_gateways().start()
    async with admin_client(gateway) as admin:
        key = await new_key(admin, rpm_limit=3)
    assert await chats(gateway, key["key"], 3) == [200] * 3
    gateway.restart()
    async with bearer_client(gateway, key["key"]) as client:
        error = rate_limit_error(await chat(client))
    assert error["current"] == 3 and "Current: 3 requests in the minute" in error["message"]


@pytest.fixture
def postgres_database() -> Iterator[TestDatabase]:
    database = TestDatabase()
    database.create()
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture
async def two_instances(
    private_gateways: GatewayMaker, postgres_database: TestDatabase
) -> AsyncIterator[tuple[GatewayServer, GatewayServer]]:
    """Two gateways on one PostgreSQL database and one Redis key prefix (deleted afterwards)."""
    await check_redis()
    prefix_name = f"lgrl-{uuid.uuid4().hex[:12]}"
    settings = {"database_url": postgres_database.dsn, "redis_url": REDIS_URL, "redis_key_prefix": prefix_name}
    first = private_gateways(**settings)
    await asyncio.to_thread(first.start)  # creates the schema before the second one starts
    second = private_gateways(**settings)
    await asyncio.to_thread(second.start)
    try:
        yield first, second
    finally:
        await asyncio.to_thread(first.stop)
        await asyncio.to_thread(second.stop)
        client = redis_client()
        try:
            await delete_prefixed(client, f"{prefix_name}:{{{prefix_name}}}:")
        finally:
            await client.aclose()


async def test_two_instances_enforce_rate_limits_jointly(
    two_instances: tuple[GatewayServer, GatewayServer], clock: ShiftedClock
) -> None:
    """40 concurrent requests spread over two instances against rpm_limit 10: exactly 10 served; and
    max_parallel_requests 2 counts the requests in flight on both instances together."""
    clock.start_of_minute()
    first, second = two_instances
    async with admin_client(first) as admin:
        rpm_key = await new_key(admin, rpm_limit=10)
        parallel_key = await new_key(admin, max_parallel_requests=2)
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    async with (
        bearer_client(first, rpm_key["key"], limits=limits) as on_first,
        bearer_client(second, rpm_key["key"], limits=limits) as on_second,
    ):
        responses = await asyncio.gather(*(chat(on_first if i % 2 else on_second) for i in range(40)))
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 10, statuses
    assert statuses.count(429) == 30, statuses

    body = chat_body(f"slow {marker()}", DRIP_MODEL, stream=True)
    async with (
        bearer_client(first, parallel_key["key"]) as on_first,
        bearer_client(second, parallel_key["key"]) as on_second,
        on_first.stream("POST", "/v1/chat/completions", json=body) as streaming_first,
        on_second.stream("POST", "/v1/chat/completions", json=body) as streaming_second,
    ):
        assert streaming_first.status_code == streaming_second.status_code == 200
        error = rate_limit_error(await chat(on_first))
        assert error["limit_type"] == "max_parallel_requests"
        await streaming_second.aread()
        assert (await chat(on_first)).status_code == 200
        await streaming_first.aread()
