"""Fixtures of the multi-instance tests: a fresh PostgreSQL database per module, a Redis key prefix and two
gateway processes per test. Without PostgreSQL or Redis the tests skip, unless LEDGERGATE_REQUIRE_SERVICES=1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.e2e.cluster import Cluster, GatewayProcess, TestDatabase, cluster_config, unique_prefix_name
from tests.storage.contract.services import check_redis, delete_prefixed, redis_client
from tests.support.fake_upstream import FakeUpstream

StartCluster = Callable[..., Awaitable[Cluster]]


@pytest.fixture(scope="module")
def e2e_database() -> Iterator[TestDatabase]:
    database = TestDatabase()
    database.create()
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture
async def redis_admin() -> AsyncIterator[Redis]:
    await check_redis()
    client = redis_client()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def start_cluster(
    tmp_path: Path, fake_upstream: FakeUpstream, e2e_database: TestDatabase, redis_admin: Redis
) -> AsyncIterator[StartCluster]:
    """Start two gateways on the module's database and a Redis prefix of this test's own; every process still
    running is stopped, and the prefix's keys deleted, at teardown."""
    started: list[Cluster] = []

    async def start(hold_ttl_s: float = 30.0) -> Cluster:
        prefix_name = unique_prefix_name()
        document = cluster_config(fake_upstream.base_url, e2e_database.name, prefix_name, hold_ttl_s)
        workdir = tmp_path / prefix_name
        workdir.mkdir()
        cluster = Cluster(GatewayProcess("a", workdir, document), GatewayProcess("b", workdir, document), prefix_name)
        started.append(cluster)
        # Started together, as a rollout would: the schema migration serialises on its advisory lock.
        await asyncio.gather(cluster.a.start_async(), cluster.b.start_async())
        return cluster

    try:
        yield start
    finally:
        for cluster in started:
            await asyncio.gather(*(asyncio.to_thread(instance.stop) for instance in cluster.instances))
            await delete_prefixed(redis_admin, cluster.redis_prefix)
