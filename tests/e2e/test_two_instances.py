"""Two gateway processes on one PostgreSQL and one Redis enforce every budget jointly and lose nothing.

The LiteLLM failures these pin: per-pod counters letting N pods spend N x budget, check-then-increment races,
counters reseeded additively, spend dropped when a pod dies, holds pinning a budget forever.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from ledgergate.storage.redis_counters import RedisCounters
from tests.builders import WallClock
from tests.e2e.cluster import (
    REQUEST_COST_NANOS,
    SLOW_MODEL,
    GatewayProcess,
    TestDatabase,
    usd_for_requests,
)
from tests.e2e.conftest import StartCluster
from tests.e2e.traffic import (
    Outcome,
    admin_post,
    chat,
    http_client,
    key_spend_nanos,
    new_key,
    team_spend_nanos,
)
from tests.storage.contract.services import redis_client
from tests.support.timing import scaled, until

_FLUSH_PREFIX = """
local keys = redis.call('KEYS', ARGV[1] .. '*')
for i = 1, #keys, 500 do redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys))) end
return #keys
"""


async def flush_prefix(client: Redis, prefix: str) -> int:
    """What FLUSHALL does to one deployment's keys, atomically as FLUSHALL does (one script; the test database
    is small, so KEYS is fine), without touching other tests' keys."""
    return int(await client.eval(_FLUSH_PREFIX, 0, prefix))


async def _live_holds(prefix: str) -> int:
    """Holds still live in Redis (expired ones are swept by the count itself)."""
    client = redis_client()
    try:
        return await RedisCounters(client, WallClock(), prefix=prefix).held_count()
    finally:
        await client.aclose()


async def _no_live_holds(prefix: str) -> bool:
    return await _live_holds(prefix) == 0


def _phases(outcomes: list[tuple[str, Outcome]]) -> list[tuple[str, str, int]]:
    return [(when, outcome.instance, outcome.status) for when, outcome in outcomes]


async def _run_load(
    http: httpx.AsyncClient,
    pick: Callable[[int], GatewayProcess],
    secret: str,
    workers: int,
    stop: asyncio.Event,
    outcomes: list[tuple[str, Outcome]],
    phase: list[str],
) -> None:
    """``workers`` closed-loop clients until ``stop``; each outcome is kept with the phase it ended in."""

    async def worker(index: int) -> None:
        sent = index
        while not stop.is_set():
            outcome = await chat(http, pick(sent), secret, SLOW_MODEL)
            outcomes.append((phase[0], outcome))
            sent += workers
            if outcome.status == 0:
                await asyncio.sleep(0.01)  # a dead instance refuses at once: do not spin

    await asyncio.gather(*(worker(index) for index in range(workers)))


async def test_two_instances_enforce_key_and_team_budgets_jointly(
    start_cluster: StartCluster, e2e_database: TestDatabase
) -> None:
    """200 concurrent requests over both instances against a key and a team that each pay for 20 requests: at
    most the SPEC bound is served (standard: admitted while spent + held < max_budget, so at most one request's
    maximum cost over; here every hold equals its actual cost, so exactly 20), not 20 per instance; the ledger,
    the counters both instances enforce and the costs the clients were told agree to the nano."""
    budget_requests, total_requests = 20, 200
    cluster = await start_cluster()
    async with http_client() as http:
        team, _ = await admin_post(
            http,
            cluster.a,
            "/team/new",
            {"team_alias": "e2e-joint", "max_budget": usd_for_requests(budget_requests), "budget_duration": "30d"},
        )
        team_id = str(team["team_id"])
        secret, token = await new_key(http, cluster.b, team_id=team_id, max_budget=usd_for_requests(budget_requests))
        outcomes = await asyncio.gather(
            *(chat(http, cluster.instances[index % 2], secret) for index in range(total_requests))
        )
        statuses = Counter(outcome.status for outcome in outcomes)
        assert set(statuses) <= {200, 429}, statuses
        served = [outcome for outcome in outcomes if outcome.status == 200]
        overshoot_bound = budget_requests + 1  # max_budget plus one request's maximum cost
        assert len(served) <= overshoot_bound
        assert len(served) == budget_requests, statuses
        for refused in (outcome for outcome in outcomes if outcome.status == 429):
            assert refused.body["error"]["type"] == "budget_exceeded"
            assert refused.body["error"]["entity"] in ("key", "team")
        served_cost = sum(outcome.cost_nanos or 0 for outcome in served)
        assert served_cost == budget_requests * REQUEST_COST_NANOS
        assert await e2e_database.key_ledger(token) == (len(served), served_cost)
        assert await e2e_database.entity_charged("team", team_id) == served_cost
        for instance in cluster.instances:
            assert await key_spend_nanos(http, instance, secret) == served_cost
            assert await team_spend_nanos(http, instance, team_id) == served_cost


async def test_two_instances_sigkill_loses_no_record_and_its_holds_expire(
    start_cluster: StartCluster, e2e_database: TestDatabase
) -> None:
    """An instance SIGKILLed under load and restarted: every response a client received has its spend record
    (committed before the response), the dead instance's holds expire instead of pinning the budget, and the
    counters equal the ledger afterwards."""
    hold_ttl_s = scaled(2.0)
    cluster = await start_cluster(hold_ttl_s=hold_ttl_s)
    outcomes: list[tuple[str, Outcome]] = []
    phase = ["before"]
    stop = asyncio.Event()

    def served_in(when: str, instance: str) -> Callable[[], bool]:
        # Each phase lasts until it has served what the assertions below need, not a fixed time: a loaded
        # machine may serve nothing in 0.6 s. The 16 closed-loop workers keep requests in flight on both.
        return lambda: any(outcome == (when, instance, 200) for outcome in _phases(outcomes))

    async with http_client() as http:
        secret, token = await new_key(http, cluster.a, max_budget=usd_for_requests(100_000))
        load = asyncio.create_task(
            _run_load(http, lambda sent: cluster.instances[sent % 2], secret, 16, stop, outcomes, phase)
        )
        await until(served_in("before", "a"), "instance a serves before the kill", within_s=30)
        phase[0] = "killed"
        cluster.a.kill()
        killed_at = time.monotonic()
        await until(served_in("killed", "b"), "instance b serves while a is dead", within_s=30)
        await cluster.a.start_async()
        phase[0] = "restarted"
        await until(served_in("restarted", "a"), "the restarted instance a serves", within_s=30)
        stop.set()
        await load

        by_phase = Counter((when, outcome.instance, outcome.status) for when, outcome in outcomes)
        assert by_phase[("before", "a", 200)] > 0 and by_phase[("restarted", "a", 200)] > 0, by_phase
        assert by_phase[("killed", "b", 200)] > 0, by_phase
        assert {outcome.status for _, outcome in outcomes} <= {200, 0}, by_phase
        served = [outcome for _, outcome in outcomes if outcome.status == 200]
        served_ids = [str(outcome.request_id) for outcome in served]
        assert await e2e_database.recorded_request_ids(served_ids) == set(served_ids)
        records, ledger_nanos = await e2e_database.key_ledger(token)
        # Requests cut off by the kill may have been recorded without their response arriving: never fewer.
        assert records >= len(served)

        # The dead instance's holds expire hold_ttl_s after the kill: none may outlive that by much.
        await asyncio.sleep(max(0.0, killed_at + hold_ttl_s - time.monotonic()))
        await until(
            lambda: _no_live_holds(cluster.redis_prefix), "the dead instance's holds expire", within_s=10, poll_s=0.1
        )
        enforced = [await key_spend_nanos(http, instance, secret) for instance in cluster.instances]
        assert enforced == [ledger_nanos, ledger_nanos]


async def test_two_instances_counter_loss_under_load_keeps_budget_and_rebuilds_exactly(
    start_cluster: StartCluster, e2e_database: TestDatabase, redis_admin: Redis
) -> None:
    """Every Redis key of the deployment deleted under load (what FLUSHALL does to it): counters are rebuilt from
    the ledger once, never additively; the budget still holds (over by at most the holds the flush forgot, one
    per request in flight, plus the standard one request); once quiet the counters equal the ledger exactly,
    and admission continues from the exact value."""
    budget_requests, workers = 40, 12
    cluster = await start_cluster()
    outcomes: list[Outcome] = []
    flushed_after = -1
    async with http_client() as http:
        secret, token = await new_key(http, cluster.b, max_budget=usd_for_requests(budget_requests))

        async def worker(index: int) -> None:
            nonlocal flushed_after
            sent = index
            while True:
                outcome = await chat(http, cluster.instances[sent % 2], secret, SLOW_MODEL)
                outcomes.append(outcome)
                assert outcome.status in (200, 429), outcome
                if outcome.status == 429:
                    return
                served = sum(1 for seen in outcomes if seen.status == 200)
                if flushed_after < 0 and served >= budget_requests // 3:
                    flushed_after = served
                    await flush_prefix(redis_admin, cluster.redis_prefix)
                sent += workers

        await asyncio.gather(*(worker(index) for index in range(workers)))
        assert flushed_after > 0
        served = [outcome for outcome in outcomes if outcome.status == 200]
        assert len(served) <= budget_requests + 1 + workers
        served_cost = sum(outcome.cost_nanos or 0 for outcome in served)
        assert await e2e_database.key_ledger(token) == (len(served), served_cost)
        for instance in cluster.instances:
            assert await key_spend_nanos(http, instance, secret) == served_cost

        # Quiet and exact again: requests are admitted exactly while spend < max_budget.
        while (outcome := await chat(http, cluster.a, secret)).status == 200:
            served.append(outcome)
        assert outcome.status == 429
        records, ledger_nanos = await e2e_database.key_ledger(token)
        assert records == len(served)
        assert (
            budget_requests * REQUEST_COST_NANOS
            <= ledger_nanos
            <= (budget_requests + 1 + workers) * (REQUEST_COST_NANOS)
        )
        assert await key_spend_nanos(http, cluster.b, secret) == ledger_nanos
