"""Fixtures of the failover tests: a fresh PostgreSQL schema (ledger, SQL counters, shared mode), a Redis key
prefix, and gateway "nodes" whose Redis traffic goes through a TCP proxy each, to cut (an outage) and restore.

Each node is what one gateway instance wires for ``counter_fallback: database``: ``FallbackCounters`` over its own
Redis client and SQL pool, polling the shared mode fast so the tests stay short."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.admission import Admitted, BudgetMode, CounterKey, CounterLine, Decision, LineState
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.storage.fallback_counters import FallbackCounters
from ledgergate.storage.redis_counters import RedisCounters
from ledgergate.storage.sql.counter_mode import CounterStore, SqlCounterMode
from ledgergate.storage.sql.engine import upgrade_schema
from ledgergate.storage.sql.ledger import SqlLedger
from ledgergate.storage.sql.sql_counters import SqlCounters
from tests.builders import WallClock, spend_record
from tests.e2e.test_cache_coherence import RedisProxy
from tests.storage.contract.services import (
    check_redis,
    create_pg_schema,
    delete_prefixed,
    drop_pg_schema,
    pg_engine,
    redis_client,
    unique_prefix,
)
from tests.support import timing

POLL_S = 0.05
FENCE_S = 0.3
LIFETIME_END_S = 253_402_300_799
HOLD_TTL_S = 60.0


CLOCK = WallClock()


@dataclass
class Shared:
    """What every node shares: the database (ledger, SQL counters, mode) and the Redis prefix."""

    schema: str
    engine: AsyncEngine
    ledger: SqlLedger
    prefix: str


class Node:
    """One gateway instance's counters; ``proxy`` is its only way to Redis."""

    def __init__(self, shared: Shared, proxy: RedisProxy) -> None:
        self.proxy = proxy
        # As the container configures it: short timeouts and one retry, so an outage shows at once.
        self.redis = Redis.from_url(
            proxy.url,
            decode_responses=True,
            socket_connect_timeout=timing.scaled(0.5),
            socket_timeout=timing.scaled(0.5),
            retry=Retry(NoBackoff(), 1),
        )
        self.counters = FallbackCounters(
            RedisCounters(self.redis, CLOCK, prefix=shared.prefix, owns_client=True),
            SqlCounters(pg_engine(shared.schema), CLOCK, owns_engine=True),
            SqlCounterMode(shared.engine),
            self.redis,
            CLOCK,
            redis_prefix=shared.prefix,
            poll_interval_s=POLL_S,
            fence_s=FENCE_S,
        )


def lifetime_line(entity_type: EntityType, entity_id: str, limit_nanos: int | None) -> CounterLine:
    return CounterLine(CounterKey(entity_type.value, entity_id, "lifetime", 0), limit_nanos, LIFETIME_END_S)


@dataclass
class Traffic:
    """Requests as the charger makes them: hold, append the ledger record, settle."""

    ledger: SqlLedger
    targets: tuple[EntityRef, ...]
    lines: list[CounterLine]
    mode: BudgetMode = BudgetMode.STANDARD

    async def hold(self, node: Node, max_cost: int, min_cost: int = 0) -> tuple[str, Decision]:
        request_id = uuid.uuid4().hex
        decision = await node.counters.try_hold(
            request_id, self.lines, max_cost, min_cost, self.mode, CLOCK.now_s() + HOLD_TTL_S, self.ledger.window_sums
        )
        return request_id, decision

    async def finish(self, node: Node, request_id: str, cost: int) -> None:
        now_us = int(CLOCK.now_s() * 1_000_000)
        record = spend_record(
            request_id,
            cost_nanos=cost,
            charged_at_us=now_us,
            targets=self.targets,
            model="flat",
            deployment_id="flat#0",
            prompt_tokens=1,
            completion_tokens=5,
        )
        assert await self.ledger.append(record)
        await node.counters.settle(request_id, self.lines, cost)

    async def request(self, node: Node, max_cost: int, cost: Callable[[int], int] | None = None) -> int | None:
        """The cost charged, or None when refused."""
        request_id, decision = await self.hold(node, max_cost)
        if not isinstance(decision, Admitted):
            return None
        charged = decision.hold_nanos if cost is None else cost(decision.hold_nanos)
        await self.finish(node, request_id, charged)
        return charged

    async def ledger_sums(self) -> list[int]:
        keys, ends = [line.key for line in self.lines], [line.period_end_s for line in self.lines]
        return await self.ledger.window_sums(keys, ends)

    async def in_redis(self, node: Node) -> list[LineState]:
        """The node's Redis counters (not the store that admits now)."""
        return await node.counters.redis_counters.read(self.lines, self.ledger.window_sums)


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """``tests.support.timing.until``: ``timeout_s`` is a base value, scaled."""
    await timing.until(condition, what, within_s=timeout_s)


async def admitting_everywhere(nodes: list[Node], store: CounterStore, what: str) -> None:
    await until(lambda: all(node.counters.admitting() is store for node in nodes), what)


@pytest.fixture
async def shared() -> AsyncIterator[Shared]:
    await check_redis()
    schema = await create_pg_schema()
    engine = pg_engine(schema)
    ledger = SqlLedger(engine)
    prefix = unique_prefix()
    try:
        await upgrade_schema(engine)
        await ledger.start()
        yield Shared(schema, engine, ledger, prefix)
    finally:
        await ledger.close()
        await engine.dispose()
        await drop_pg_schema(schema)
        admin = redis_client()
        await delete_prefixed(admin, prefix)
        await admin.aclose()


NodeFactory = Callable[..., Awaitable[Node]]


@pytest.fixture
async def start_node(shared: Shared) -> AsyncIterator[NodeFactory]:
    """Start a node behind a Redis proxy of its own (cut one: that instance is cut off; cut all: Redis is down)."""
    nodes: list[Node] = []

    async def start() -> Node:
        proxy = RedisProxy()
        await proxy.start()
        node = Node(shared, proxy)
        nodes.append(node)
        await node.counters.start()
        return node

    try:
        yield start
    finally:
        for node in nodes:
            await node.counters.aclose()
            await node.proxy.cut()
