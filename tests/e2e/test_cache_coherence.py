"""The cache coherence protocol (``storage/redis_invalidation.py``) between two instances' ``Directory``s, in
one process for control over timing: real Redis, one real SQLite file, two engines."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.services.directory import Directory
from ledgergate.storage.redis_invalidation import RedisCacheCoherence
from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.entities import SqlEntityStore
from tests.builders import entity
from tests.e2e.cluster import free_port
from tests.storage.contract.services import REDIS_URL, check_redis, delete_prefixed, redis_client
from tests.support.timing import scaled, until

# Scaled (tests/support/timing.py): a lease renews every LEASE_S / 4, so on a loaded machine a short lease lapses
# between renewals and the tests would see outages that are only the scheduler's.
LEASE_S = scaled(1.0)
# For the test that tells "waited for an acknowledgement" from "waited out the lease": with a long lease the two
# differ by seconds, whatever the load.
LONG_LEASE_S = scaled(10.0)


class SlowStore(SqlEntityStore):
    """The real store, with reads that can be made to take a while (a slow database round trip)."""

    read_delay_s = 0.0
    reads_done = 0  # database reads finished (before their delay): a test waits for this, not for a time

    async def get(self, entity_type: EntityType, entity_id: str) -> Entity | None:
        entity = await super().get(entity_type, entity_id)
        self.reads_done += 1
        await asyncio.sleep(self.read_delay_s)
        return entity


class RedisProxy:
    """A TCP relay to the real Redis that can be cut and restored: a Redis outage for whoever connects through it."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/15"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        redis_reader, redis_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self._writers.update((client_writer, redis_writer))

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, redis_writer), pipe(redis_reader, client_writer))


class Instance:
    """One instance's ``Directory`` with its own engine, Redis client and coherence (lease ``lease_s``)."""

    def __init__(self, url: str, prefix: str, redis_url: str = REDIS_URL, lease_s: float = LEASE_S) -> None:
        self.engine = create_engine(url)
        # As in the container: short timeouts (within the lease) and one retry, so an outage shows at once.
        self.redis = Redis.from_url(
            redis_url,
            decode_responses=True,
            socket_connect_timeout=LEASE_S / 2,
            socket_timeout=LEASE_S / 2,
            retry=Retry(NoBackoff(), 1),
        )
        self.store = SlowStore(self.engine)
        self.directory = Directory(self.store, max_age_s=60)
        self.clears: list[float] = []
        self.closed = False
        self.coherence = RedisCacheCoherence(
            self.redis, prefix, on_invalidate=self.directory.invalidate, on_clear=self._clear, lease_s=lease_s
        )
        self.directory.coherence = self.coherence

    def _clear(self) -> None:
        self.clears.append(time.monotonic())
        self.directory.clear()

    async def until_leased(self) -> None:
        await until(self.coherence.cache_usable, "the instance holds a cache lease", within_s=10)

    def freeze(self) -> None:
        """Stop receiving and renewing without leaving, as a stalled or killed process does."""
        for task in self.coherence._tasks:
            task.cancel()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.coherence.aclose()
        await self.redis.aclose()
        await self.engine.dispose()


@dataclass
class Pair:
    a: Instance
    b: Instance
    prefix: str


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    async with pair_of(tmp_path, LEASE_S) as started:
        yield started


@asynccontextmanager
async def pair_of(tmp_path: Path, lease_s: float) -> AsyncIterator[Pair]:
    await check_redis()
    prefix = f"lgcoh-{uuid.uuid4().hex[:12]}:{{x}}:"
    url = f"sqlite+aiosqlite:///{tmp_path / 'entities.db'}"
    instances = [Instance(url, prefix, lease_s=lease_s), Instance(url, prefix, lease_s=lease_s)]
    try:
        await upgrade_schema(instances[0].engine)
        for instance in instances:
            await instance.coherence.start()
        yield Pair(instances[0], instances[1], prefix)
    finally:
        for instance in instances:
            # Bounded: this teardown hung forever now and then (idle loop, before this file's timing changes
            # too), which would stall a whole run; a failure names it instead.
            await asyncio.wait_for(instance.aclose(), scaled(30.0))
        admin: Redis = redis_client()
        await delete_prefixed(admin, prefix)
        await admin.aclose()


def _key(entity_id: str) -> Entity:
    return entity(EntityType.KEY, entity_id, alias="coherence")


async def test_cache_coherence_change_on_one_instance_is_seen_by_the_other_when_the_write_returns(
    tmp_path: Path,
) -> None:
    """B answers from its cache, yet the instant A's save returns B serves the new state: A waited for B's
    acknowledgement (milliseconds), not for a timeout (a long lease, so that even a loaded machine's
    acknowledgement is far from it)."""
    async with pair_of(tmp_path, LONG_LEASE_S) as pair:
        await pair.a.until_leased()
        await pair.b.until_leased()
        key = await pair.a.directory.create(_key("k1"))
        assert (await pair.b.directory.get(EntityType.KEY, "k1")) == key
        pair.b.store.read_delay_s = 0.0
        started = time.monotonic()
        await pair.a.directory.save(key.updated(blocked=True, version=key.version + 1))
        assert time.monotonic() - started < LONG_LEASE_S / 2
        seen = await pair.b.directory.get(EntityType.KEY, "k1")
        assert seen is not None and seen.blocked


async def test_cache_coherence_unacknowledging_instance_has_lost_its_lease_when_the_write_returns(pair: Pair) -> None:
    """An instance that stops receiving (stalled, killed) cannot hold up writes for longer than its lease, and
    by the time the write returns it may no longer answer from its cache."""
    await pair.a.until_leased()
    await pair.b.until_leased()
    key = await pair.a.directory.create(_key("k2"))
    await pair.b.directory.get(EntityType.KEY, "k2")
    pair.b.freeze()
    started = time.monotonic()
    await pair.a.directory.save(key.updated(blocked=True, version=key.version + 1))
    assert time.monotonic() - started <= LEASE_S + scaled(1.0)  # the lease, not a hang
    assert not pair.b.coherence.cache_usable()
    seen = await pair.b.directory.get(EntityType.KEY, "k2")  # from the database
    assert seen is not None and seen.blocked


async def test_cache_coherence_lost_redis_state_clears_every_cache(pair: Pair) -> None:
    """Deleting the deployment's Redis keys (FLUSHALL, a Redis restart) loses the record of which changes an
    instance saw: every instance drops its whole cache rather than trust it."""
    await pair.b.until_leased()
    await pair.b.directory.create(_key("k3"))
    clears_before = len(pair.b.clears)
    admin = redis_client()
    try:
        await delete_prefixed(admin, pair.prefix)
    finally:
        await admin.aclose()
    await until(lambda: len(pair.b.clears) > clears_before, "a cache clear after the state was lost", within_s=5)
    await pair.b.until_leased()


async def test_cache_coherence_read_overlapping_a_change_is_not_cached(pair: Pair) -> None:
    """A database read that started before another instance's change and ends after its invalidation may return
    the old state to its own (concurrent) request, but must not be cached for later ones."""
    await pair.a.until_leased()
    await pair.b.until_leased()
    key = await pair.a.directory.create(_key("k4"))
    pair.b.store.read_delay_s = scaled(0.3)
    reads_before = pair.b.store.reads_done
    slow_read = asyncio.ensure_future(pair.b.directory.get(EntityType.KEY, "k4"))
    # B has read the old row and is still "on the wire".
    await until(lambda: pair.b.store.reads_done > reads_before, "B's read of the old row", within_s=10)
    await pair.a.directory.save(key.updated(blocked=True, version=key.version + 1))
    await slow_read  # old or new: it overlapped the change
    pair.b.store.read_delay_s = 0.0
    seen = await pair.b.directory.get(EntityType.KEY, "k4")
    assert seen is not None and seen.blocked


async def test_cache_coherence_change_made_during_a_redis_outage_is_seen_when_it_ends(tmp_path: Path) -> None:
    """Redis unreachable for every instance: the writer cannot announce, so it waits out the lease; the other
    instance's lease lapses meanwhile, and when Redis is back it drops its cache before using it again, so it
    serves the change made during the outage, not the entity it had cached before."""
    await check_redis()
    proxy = RedisProxy()
    await proxy.start()
    prefix = f"lgcoh-{uuid.uuid4().hex[:12]}:{{x}}:"
    url = f"sqlite+aiosqlite:///{tmp_path / 'entities.db'}"
    a, b = Instance(url, prefix, proxy.url), Instance(url, prefix, proxy.url)
    try:
        await upgrade_schema(a.engine)
        for instance in (a, b):
            await instance.coherence.start()
            await instance.until_leased()
        key = await a.directory.create(_key("k5"))
        await b.directory.get(EntityType.KEY, "k5")
        await proxy.cut()
        started = time.monotonic()
        await a.directory.save(key.updated(blocked=True, version=key.version + 1))
        assert time.monotonic() - started >= LEASE_S - 0.1
        assert not b.coherence.cache_usable()
        await a.aclose()  # the writer is gone: nobody announces the change after the outage
        await proxy.start()
        await b.until_leased()
        seen = await b.directory.get(EntityType.KEY, "k5")
        assert seen is not None and seen.blocked
    finally:
        await proxy.cut()
        for instance in (a, b):
            await instance.aclose()
        admin: Redis = redis_client()
        await delete_prefixed(admin, prefix)
        await admin.aclose()
