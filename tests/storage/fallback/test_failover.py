"""Admission while Redis is unreachable (``counter_fallback: database``): SQL row locks admit instead, budgets
stay exact across instances, and Redis counters are exact again when it returns.

Real PostgreSQL and Redis; each node reaches Redis through a TCP proxy that the test cuts (an outage) and
restores. Nodes run in this process, so the tests control timing; the gateway test runs a real process."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from ledgergate.domain.admission import Admitted, BudgetMode, LineState
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ports import CounterStoreUnavailable
from ledgergate.storage.fallback_counters import FallbackCounters
from ledgergate.storage.redis_counters import RedisCounters
from ledgergate.storage.sql.counter_mode import CounterStore, SqlCounterMode
from ledgergate.storage.sql.sql_counters import SqlCounters
from tests.storage.fallback.conftest import (
    CLOCK,
    POLL_S,
    Node,
    NodeFactory,
    Shared,
    Traffic,
    admitting_everywhere,
    lifetime_line,
)
from tests.support.timing import scaled

COST = 10_000
KEY, TEAM = EntityRef(EntityType.KEY, "k"), EntityRef(EntityType.TEAM, "t")


def key_and_team(shared: Shared, key_limit: int, team_limit: int, mode: BudgetMode = BudgetMode.STANDARD) -> Traffic:
    lines = [lifetime_line(EntityType.KEY, "k", key_limit), lifetime_line(EntityType.TEAM, "t", team_limit)]
    return Traffic(shared.ledger, (KEY, TEAM), lines, mode)


async def cut(*nodes: Node) -> None:
    for node in nodes:
        await node.proxy.cut()


async def restore(*nodes: Node) -> None:
    for node in nodes:
        await node.proxy.start()


async def test_fallback_outage_keeps_admitting_with_exact_budgets(shared: Shared, start_node: NodeFactory) -> None:
    """Redis unreachable for every instance: requests keep being admitted through SQL, and a budget for 20
    requests serves exactly 20 over both instances, counting those charged through Redis before the outage."""
    a, b = await start_node(), await start_node()
    traffic = key_and_team(shared, 20 * COST, 100 * COST)
    before = [await traffic.request((a, b)[i % 2], COST) for i in range(6)]
    assert before == [COST] * 6
    assert a.counters.admitting() is CounterStore.REDIS
    await cut(a, b)
    during = [await traffic.request((a, b)[i % 2], COST) for i in range(16)]
    assert during == [COST] * 14 + [None] * 2
    assert a.counters.admitting() is b.counters.admitting() is CounterStore.DATABASE
    assert await b.counters.read(traffic.lines, shared.ledger.window_sums) == [LineState(20 * COST, 0)] * 2
    assert await traffic.ledger_sums() == [20 * COST] * 2


@pytest.mark.parametrize("mode", list(BudgetMode))
async def test_fallback_concurrent_requests_during_outage_keep_the_spec_bound(
    shared: Shared, start_node: NodeFactory, mode: BudgetMode
) -> None:
    """200 concurrent requests over two instances during the outage, against a key and a team that pay for ~20:
    the team ends at most one request's maximum cost over its limit (standard), never over it (strict); the SQL
    counters equal the ledger and the sum of the served costs, and no hold is left."""
    a, b = await start_node(), await start_node()
    max_cost = 1_000_000
    traffic = key_and_team(shared, 20 * max_cost, 17 * max_cost + 12_345, mode)
    await cut(a, b)
    rng = random.Random(11)
    charged: list[int] = []

    async def request(i: int) -> None:
        await asyncio.sleep(rng.random() / 200)
        cost = await traffic.request((a, b)[i % 2], max_cost, lambda hold: rng.randint(hold // 2, hold))
        if cost is not None:
            charged.append(cost)

    await asyncio.gather(*(request(i) for i in range(200)))
    assert a.counters.admitting() is b.counters.admitting() is CounterStore.DATABASE
    team_limit = traffic.lines[1].limit_nanos
    assert team_limit is not None
    assert sum(charged) <= team_limit + (max_cost if mode is BudgetMode.STANDARD else 0)
    if mode is BudgetMode.STANDARD:
        assert len(charged) >= 18  # no refusal before spent + held reaches the limit
    assert await traffic.ledger_sums() == [sum(charged)] * 2
    assert await a.counters.read(traffic.lines, shared.ledger.window_sums) == [LineState(sum(charged), 0)] * 2
    assert await a.counters.sql_counters.held_count() == 0


async def test_fallback_recovery_makes_redis_counters_exact(shared: Shared, start_node: NodeFactory) -> None:
    """When Redis is back, its counters (which missed every charge made through SQL) are rebuilt from the ledger
    before they admit again, and a hold placed through SQL during the outage that settles afterwards is counted
    in Redis too: the budget serves exactly its 20 requests in total."""
    a, b = await start_node(), await start_node()
    traffic = key_and_team(shared, 20 * COST, 100 * COST)
    assert [await traffic.request(a, COST) for _ in range(3)] == [COST] * 3
    await cut(a, b)
    assert [await traffic.request((a, b)[i % 2], COST) for i in range(5)] == [COST] * 5
    in_flight, decision = await traffic.hold(b, COST)
    assert decision == Admitted(COST)
    await restore(a, b)
    await admitting_everywhere([a, b], CounterStore.REDIS, "admission back on Redis")
    # 8, not the 3 requests Redis had counted before the outage:
    assert await traffic.in_redis(a) == [LineState(8 * COST, 0)] * 2
    await traffic.finish(b, in_flight, COST)
    assert await traffic.in_redis(a) == [LineState(9 * COST, 0)] * 2
    after = [await traffic.request((a, b)[i % 2], COST) for i in range(13)]
    assert after == [COST] * 11 + [None] * 2
    assert await traffic.ledger_sums() == [20 * COST] * 2
    assert await b.counters.read(traffic.lines, shared.ledger.window_sums) == [LineState(20 * COST, 0)] * 2


async def test_fallback_one_instance_cut_off_moves_every_instance_to_sql(
    shared: Shared, start_node: NodeFactory
) -> None:
    """One instance loses Redis while the other still reaches it: both admit through SQL (two stores, each seeing
    half the spend, would let the pair spend twice the budget), and admission returns to Redis only once every
    instance reaches it again."""
    a, b = await start_node(), await start_node()
    traffic = key_and_team(shared, 20 * COST, 100 * COST)
    assert [await traffic.request(b, COST) for _ in range(4)] == [COST] * 4
    await cut(a)
    outcomes = [await traffic.request((a, b)[i % 2], COST) for i in range(20)]
    assert outcomes == [COST] * 16 + [None] * 4
    assert b.counters.admitting() is CounterStore.DATABASE
    await asyncio.sleep(scaled(20 * POLL_S))  # b reaches Redis all along, a does not: no switch back
    assert a.counters.state.store is b.counters.state.store is CounterStore.DATABASE
    await restore(a)
    await admitting_everywhere([a, b], CounterStore.REDIS, "admission back on Redis once a reaches it")
    assert await traffic.request(a, COST) is None
    assert await traffic.in_redis(a) == [LineState(20 * COST, 0)] * 2


async def test_fallback_hold_placed_in_redis_settles_into_sql_during_the_outage(
    shared: Shared, start_node: NodeFactory
) -> None:
    """A request admitted through Redis just before the outage settles during it: its cost reaches the SQL
    counters, so the budget (3 requests) refuses the 4th instead of admitting past it."""
    a = await start_node()
    traffic = key_and_team(shared, 3 * COST, 100 * COST)
    placed_in_redis, decision = await traffic.hold(a, COST)
    assert decision == Admitted(COST)
    await cut(a)
    assert await traffic.request(a, COST) == COST  # SQL admits: it cannot see the Redis hold (the switch bound)
    await traffic.finish(a, placed_in_redis, COST)
    assert await traffic.request(a, COST) == COST
    assert await traffic.request(a, COST) is None
    assert await a.counters.read(traffic.lines, shared.ledger.window_sums) == [LineState(3 * COST, 0)] * 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_fallback_fails_closed_when_the_database_is_unreachable_too(
    shared: Shared, start_node: NodeFactory
) -> None:
    """Redis and PostgreSQL both unreachable: the request is refused with ``CounterStoreUnavailable`` (503),
    never admitted without a hold."""
    node = await start_node()
    dead = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/test")
    counters = FallbackCounters(
        RedisCounters(node.redis, CLOCK, prefix=shared.prefix),
        SqlCounters(dead, CLOCK, owns_engine=True),
        SqlCounterMode(dead),
        node.redis,
        CLOCK,
        redis_prefix=shared.prefix,
    )
    line = lifetime_line(EntityType.KEY, "k", 20 * COST)
    await cut(node)
    try:
        with pytest.raises(CounterStoreUnavailable):
            await counters.try_hold(
                "r1", [line], COST, 0, BudgetMode.STANDARD, CLOCK.now_s() + 60, shared.ledger.window_sums
            )
    finally:
        await dead.dispose()


async def test_fallback_second_outage_counts_what_redis_charged_in_between(
    shared: Shared, start_node: NodeFactory
) -> None:
    """SQL counters left from an earlier outage are recomputed when admission moves to SQL again: the requests
    charged through Redis between the two outages count against the budget."""
    a, b = await start_node(), await start_node()
    traffic = key_and_team(shared, 20 * COST, 100 * COST)
    await cut(a, b)
    assert [await traffic.request(a, COST) for _ in range(4)] == [COST] * 4
    await restore(a, b)
    await admitting_everywhere([a, b], CounterStore.REDIS, "admission back on Redis")
    assert [await traffic.request(b, COST) for _ in range(10)] == [COST] * 10
    await cut(a, b)
    assert [await traffic.request((a, b)[i % 2], COST) for i in range(8)] == [COST] * 6 + [None] * 2
    assert await traffic.ledger_sums() == [20 * COST] * 2
