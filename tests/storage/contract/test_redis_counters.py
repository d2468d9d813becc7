"""What only a shared Redis can get wrong: several instances, lost keys, straddling requests, key layout."""

from __future__ import annotations

import asyncio
import random

from redis.crc import key_slot

from ledgergate.domain.admission import Admitted, BudgetMode, LineState, Refused
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.storage.sql.ledger import SqlLedger
from tests.builders import spend_record
from tests.storage.contract.backends import PERIOD_END_S, T0_S, LedgerView, ManualClock, RedisBackend, line

FAR_S = T0_S + 10_000


async def test_redis_counters_straddling_settle_converges_to_the_ledger(redis_backend: RedisBackend) -> None:
    """A request held before a FLUSHALL and settled after another instance reloaded the counter is counted
    exactly once once the counter is quiet, whether the reload's ledger read came before or after its record."""
    for record_before_reload in (False, True):
        ledger = LedgerView()
        target = line(f"k-{record_before_reload}", 10_000)
        a, b = redis_backend.instance(), redis_backend.instance()
        ledger.spent[target.key] = 1_000
        assert await a.try_hold("r1", [target], 500, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(500)
        await redis_backend.lose_cache()
        if record_before_reload:
            ledger.spent[target.key] += 400
        assert await b.try_hold("r2", [target], 100, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(100)
        if not record_before_reload:
            ledger.spent[target.key] += 400
        await a.settle("r1", [target], 400)
        # Until quiet the counter keeps the higher candidate (fail closed) ...
        assert (await b.read([target], ledger))[0].spent_nanos >= 1_400
        ledger.spent[target.key] += 60
        await b.settle("r2", [target], 60)
        # ... and once no hold is on it, it is recomputed from the ledger: exact.
        assert await b.read([target], ledger) == [LineState(1_460, 0)]
        assert await a.read([target], ledger) == [LineState(1_460, 0)]


async def test_redis_counters_settle_racing_a_reload_is_not_lost(redis_backend: RedisBackend) -> None:
    """A settle on an absent counter while another instance's load is reading the ledger (snapshot before the
    record) does not lose the cost: the counter is flagged and recomputed."""
    ledger = LedgerView(delay_s=0.05)
    target = line("k", 10_000)
    a, b = redis_backend.instance(), redis_backend.instance()
    ledger.spent[target.key] = 1_000
    task = asyncio.ensure_future(b.read([target], ledger))  # its snapshot is taken before r1's record
    await asyncio.sleep(0.01)
    ledger.spent[target.key] += 400
    await a.settle("r1", [target], 400)
    # The racing load stored its older sum, saw the flag, and recomputed before answering.
    assert await task == [LineState(1_400, 0)]
    assert await a.read([target], ledger) == [LineState(1_400, 0)]
    assert ledger.loads == 2


async def test_redis_counters_crashed_instance_holds_expire_for_the_others(
    redis_backend: RedisBackend, clock: ManualClock
) -> None:
    """Holds of an instance that died are freed at their expiry by whichever instance comes next; the held total
    never goes negative when a late settle arrives afterwards."""
    ledger = LedgerView()
    target = line("k", 1_000)
    crashed, survivor = redis_backend.instance(), redis_backend.instance()
    for i in range(4):
        decision = await crashed.try_hold(f"c{i}", [target], 250, 0, BudgetMode.STANDARD, T0_S + 30, ledger)
        assert decision == Admitted(250)
    refused = await survivor.try_hold("s1", [target], 1, 0, BudgetMode.STANDARD, FAR_S, ledger)
    assert refused == Refused(0, LineState(0, 1_000))
    clock.now = T0_S + 30
    assert await survivor.try_hold("s2", [target], 1, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(1)
    ledger.spent[target.key] += 200
    await crashed.settle("c0", [target], 200)  # a late settle after expiry still charges, and frees nothing twice
    assert await survivor.read([target], ledger) == [LineState(200, 1)]
    assert await survivor.held_count() == 1


async def test_redis_counters_retried_hold_is_placed_once(redis_backend: RedisBackend) -> None:
    """try_hold retried with the same hold id (e.g. after a timeout) does not pin the budget twice."""
    ledger = LedgerView()
    target = line("k", 1_000)
    counters = redis_backend.instance()
    for _ in range(2):
        assert await counters.try_hold("r1", [target], 300, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(300)
    assert await counters.read([target], ledger) == [LineState(0, 300)]


async def test_redis_counters_stale_counter_waits_for_quiet(redis_backend: RedisBackend) -> None:
    """A flagged counter is not recomputed while a hold is on it (that request would be half counted), and is
    once the hold is gone."""
    ledger = LedgerView()
    target = line("k", 10_000)
    counters = redis_backend.instance()
    ledger.spent[target.key] = 100
    assert await counters.try_hold("r1", [target], 10, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(10)
    ledger.spent[target.key] += 50
    await counters.settle("unknown", [target], 50)  # no hold record: flagged
    assert await counters.try_hold("r2", [target], 5, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(5)
    await counters.release("r2")
    loads = ledger.loads
    ledger.spent[target.key] += 999  # a divergent ledger would show if it were reloaded now
    assert await counters.read([target], ledger) == [LineState(150, 10)]
    assert ledger.loads == loads
    await counters.release("r1")
    assert await counters.read([target], ledger) == [LineState(1_149, 0)]


async def test_redis_counters_key_layout_one_slot_and_ttls(redis_backend: RedisBackend) -> None:
    """Every key shares one cluster slot (hash tag); period counters expire after their period (relative to the
    injected clock), lifetime counters never; settled markers expire."""
    ledger = LedgerView()
    hourly, lifetime = line("k:with:colons", 10_000), line("k:with:colons", None, window="lifetime")
    counters = redis_backend.instance()
    assert await counters.try_hold("r1", [hourly, lifetime], 10, 0, BudgetMode.STANDARD, FAR_S, ledger)
    await counters.settle("r1", [hourly, lifetime], 7)
    admin = redis_backend.admin
    keys = [key async for key in admin.scan_iter(match=f"{redis_backend.prefix}*")]
    assert len({key_slot(key.encode()) for key in keys}) == 1
    hourly_ttl = await admin.ttl(counters.counter_name(hourly.key))
    assert PERIOD_END_S - T0_S < hourly_ttl <= PERIOD_END_S - T0_S + 3600
    assert await admin.ttl(counters.counter_name(lifetime.key)) == -1
    assert await admin.ttl(f"{redis_backend.prefix}s:r1") > 0
    assert await counters.read([hourly, lifetime], ledger) == [LineState(7, 0), LineState(7, 0)]


async def test_redis_counters_flush_under_load_rebuilds_exactly(
    redis_backend: RedisBackend, sqlite_ledger: SqlLedger
) -> None:
    """FLUSHALL in the middle of 200 concurrent requests on 3 instances: the overshoot grows by at most the holds
    that were lost, and once quiet every counter equals its ledger sum exactly (never N times it)."""
    key, team = EntityRef(EntityType.KEY, "k"), EntityRef(EntityType.TEAM, "t")
    max_cost = 1_000_000
    lines = [line("k", 30 * max_cost), line("t", 25 * max_cost, entity_type="team")]
    instances = [redis_backend.instance() for _ in range(3)]
    rng = random.Random(11)
    in_flight: set[int] = set()
    lost_holds = 0

    async def request(i: int) -> None:
        counters = instances[i % 3]
        await asyncio.sleep(rng.random() / 50)
        decision = await counters.try_hold(
            f"r{i}", lines, max_cost, 0, BudgetMode.STANDARD, FAR_S, sqlite_ledger.window_sums
        )
        if isinstance(decision, Refused):
            return
        in_flight.add(i)
        await asyncio.sleep(rng.random() / 50)
        cost = rng.randint(max_cost // 2, max_cost)
        record = spend_record(
            f"r{i}",
            cost_nanos=cost,
            charged_at_us=T0_S * 1_000_000 + i,
            targets=(key, team),
            key_id="k",
            prompt_tokens=1,
            completion_tokens=1,
            ended_at_us=T0_S * 1_000_000 + i,
        )
        await sqlite_ledger.append(record)
        await counters.settle(f"r{i}", lines, cost)
        in_flight.discard(i)

    async def flush() -> None:
        nonlocal lost_holds
        for _ in range(2_000):  # flush once several requests are between hold and settle
            if len(in_flight) >= 5:
                break
            await asyncio.sleep(0.001)
        lost_holds = len(in_flight)
        await redis_backend.lose_cache()

    await asyncio.gather(flush(), *(request(i) for i in range(200)))
    assert lost_holds >= 5
    ledger_sums = await sqlite_ledger.window_sums([x.key for x in lines], [x.period_end_s for x in lines])
    for counters in instances:
        assert await counters.read(lines, sqlite_ledger.window_sums) == [LineState(s, 0) for s in ledger_sums]
    assert ledger_sums[1] < lines[1].limit_nanos + max_cost * (1 + lost_holds)  # type: ignore[operator]
