"""The ``Counters`` contract (ledgergate/domain/ports.py), run against MemoryCounters and RedisCounters alike.

The in-process implementation defines the semantics; Redis must be indistinguishable through the port.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from ledgergate.domain.admission import Admitted, BudgetMode, CounterKey, CounterLine, LineState, Refused, decide
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import SpendRecord
from ledgergate.storage.sql.ledger import SqlLedger
from tests.builders import spend_record
from tests.storage.contract.backends import T0_S, Backend, LedgerView, ManualClock, line

FAR_S = T0_S + 10_000
SEEDS = {BudgetMode.STANDARD: 1, BudgetMode.STRICT: 2}


async def _hold(backend: Backend, hold_id: str, lines: list[CounterLine], amount: int, ledger: LedgerView) -> None:
    decision = await backend.instance().try_hold(hold_id, lines, amount, 0, BudgetMode.STANDARD, FAR_S, ledger)
    assert decision == Admitted(amount)


async def test_counters_load_missing_counter_from_loader(backend: Backend) -> None:
    """An absent counter is computed by the loader (keys and period ends passed through), once; then cached."""
    ledger = LedgerView()
    lines = [line("a", 100), line("b", None, window="lifetime")]
    ledger.spent[lines[0].key] = 40
    ledger.spent[lines[1].key] = 7
    counters = backend.instance()
    seen: list[tuple[list[CounterKey], list[int]]] = []

    async def loader(keys: Sequence[CounterKey], ends: Sequence[int]) -> list[int]:
        seen.append((list(keys), list(ends)))
        return await ledger(keys, ends)

    assert await counters.read(lines, loader) == [LineState(40, 0), LineState(7, 0)]
    assert sorted(seen[0][0]) == sorted(line.key for line in lines)
    assert dict(zip(seen[0][0], seen[0][1], strict=True)) == {line.key: line.period_end_s for line in lines}
    decision = await counters.try_hold("h1", lines, 10, 0, BudgetMode.STANDARD, FAR_S, loader)
    assert decision == Admitted(10)
    assert len(seen) == 1


def _scenarios(mode: BudgetMode, seed: int) -> list[tuple[list[tuple[int, int, int | None]], int, int]]:
    """(spent, held, limit) per line, max cost, min cost: random cases dense around every boundary of ``decide``,
    with amounts beyond 2**53 so a store that rounds money (Lua doubles) would decide differently."""
    rng = random.Random(seed)
    cases = []
    for _ in range(60):
        scale = rng.choice([1_000, 10**9, 2**60])
        max_cost = rng.choice([0, 1, scale // 7, scale // 3])
        min_cost = rng.choice([0, 1, max_cost // 2, max_cost])
        rows = []
        for _ in range(rng.randint(1, 3)):
            limit = rng.choice([None, None, 0, scale, scale, scale + 1])
            base = limit if limit is not None else scale
            offsets = [-scale, -scale // 2, -max_cost - 1, -max_cost, -max_cost // 2, -min_cost - 1, -min_cost]
            offsets += [-1, 0, 1]
            total = max(0, base + rng.choice(offsets))
            held = rng.randint(0, total)
            rows.append((total - held, held, limit))
        cases.append((rows, max_cost, min_cost))
    return cases


@pytest.mark.parametrize("mode", list(BudgetMode))
async def test_counters_decisions_match_decide(backend: Backend, mode: BudgetMode) -> None:
    """try_hold decides exactly as ``admission.decide`` (standard and strict, exact beyond 2**53 nanos) and its
    hold lands on every line when admitted, on none when refused."""
    ledger = LedgerView()
    counters = backend.instance()
    for case, (rows, max_cost, min_cost) in enumerate(_scenarios(mode, seed=SEEDS[mode])):
        lines = [line(f"c{case}-{i}", limit) for i, (_, _, limit) in enumerate(rows)]
        for i, (spent, held, _) in enumerate(rows):
            ledger.spent[lines[i].key] = spent
            if held:
                await _hold(backend, f"pre-{case}-{i}", [line(f"c{case}-{i}", None)], held, ledger)
        states = [LineState(spent, held) for spent, held, _ in rows]
        expected = decide(states, [limit for _, _, limit in rows], max_cost, min_cost, mode)
        decision = await counters.try_hold(f"h-{case}", lines, max_cost, min_cost, mode, FAR_S, ledger)
        assert decision == expected, (rows, max_cost, min_cost)
        added = decision.hold_nanos if isinstance(decision, Admitted) else 0
        assert await counters.read(lines, ledger) == [LineState(s.spent_nanos, s.held_nanos + added) for s in states]


async def test_counters_hold_is_all_or_nothing(backend: Backend) -> None:
    """A request refused by one window places no hold on any other (no pinned budget from a refusal)."""
    ledger = LedgerView()
    counters = backend.instance()
    roomy, full = line("roomy", 1_000), line("full", 100)
    ledger.spent[full.key] = 100
    decision = await counters.try_hold("h1", [roomy, full], 10, 0, BudgetMode.STANDARD, FAR_S, ledger)
    assert decision == Refused(1, LineState(100, 0))
    assert await counters.read([roomy, full], ledger) == [LineState(0, 0), LineState(100, 0)]
    assert await counters.held_count() == 0
    other = line("other", 1_000)
    assert await counters.try_hold("h2", [roomy, other], 10, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(10)
    assert await counters.read([roomy, other], ledger) == [LineState(0, 10), LineState(0, 10)]


async def test_counters_settle_is_repeat_safe(backend: Backend) -> None:
    """Settling a hold twice (a retry) charges once and frees the hold once."""
    ledger = LedgerView()
    counters = backend.instance()
    lines = [line("k", 1_000), line("team", 5_000, entity_type="team")]
    await _hold(backend, "h1", lines, 300, ledger)
    for key in (lines[0].key, lines[1].key):
        ledger.spent[key] += 120  # the ledger record is appended before settle
    await counters.settle("h1", lines, 120)
    await counters.settle("h1", lines, 120)
    assert await counters.read(lines, ledger) == [LineState(120, 0), LineState(120, 0)]
    assert await counters.held_count() == 0


async def test_counters_settle_after_expiry_still_charges(backend: Backend, clock: ManualClock) -> None:
    """A request that outlives its hold is still charged in full when it settles."""
    ledger = LedgerView()
    counters = backend.instance()
    lines = [line("k", 1_000)]
    assert await counters.try_hold("h1", lines, 300, 0, BudgetMode.STANDARD, T0_S + 5, ledger) == Admitted(300)
    clock.now = T0_S + 6
    assert await counters.held_count() == 0
    ledger.spent[lines[0].key] += 250
    await counters.settle("h1", lines, 250)
    assert await counters.read(lines, ledger) == [LineState(250, 0)]


async def test_counters_settle_never_creates_a_counter(backend: Backend) -> None:
    """A settle on an absent counter leaves it to the loader: the ledger, written first, counts the cost once."""
    ledger = LedgerView()
    counters = backend.instance()
    lines = [line("k", 1_000)]
    ledger.spent[lines[0].key] += 250
    await counters.settle("never-held", lines, 250)
    assert await counters.read(lines, ledger) == [LineState(250, 0)]


async def test_counters_release_frees_the_hold_without_spend(backend: Backend) -> None:
    """An upstream error before any output releases the hold: no spend, budget available again."""
    ledger = LedgerView()
    counters = backend.instance()
    lines = [line("k", 100)]
    await _hold(backend, "h1", lines, 100, ledger)
    assert isinstance(await counters.try_hold("h2", lines, 1, 0, BudgetMode.STANDARD, FAR_S, ledger), Refused)
    await counters.release("h1")
    await counters.release("h1")
    assert await counters.read(lines, ledger) == [LineState(0, 0)]
    assert await counters.held_count() == 0
    assert await counters.try_hold("h3", lines, 1, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(1)


async def test_counters_holds_expire_by_the_injected_clock(backend: Backend, clock: ManualClock) -> None:
    """A crashed request's hold stops pinning the budget at its expiry instant, as the injected clock tells."""
    ledger = LedgerView()
    counters = backend.instance()
    lines = [line("k", 100)]
    assert await counters.try_hold("h1", lines, 100, 0, BudgetMode.STANDARD, T0_S + 10, ledger) == Admitted(100)
    clock.now = T0_S + 9.5
    assert await counters.held_count() == 1
    assert isinstance(await counters.try_hold("h2", lines, 1, 0, BudgetMode.STANDARD, FAR_S, ledger), Refused)
    clock.now = T0_S + 10
    assert await counters.try_hold("h3", lines, 1, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(1)
    assert await counters.held_count() == 1
    assert await counters.read(lines, ledger) == [LineState(0, 1)]


async def test_counters_adjust_adds_to_a_loaded_counter(backend: Backend) -> None:
    """An admin adjustment (reset_spend) changes the spend every later admission sees, holds untouched."""
    ledger = LedgerView()
    counters = backend.instance()
    lines = [line("k", 1_000)]
    ledger.spent[lines[0].key] = 900
    await _hold(backend, "h1", lines, 50, ledger)
    assert await counters.adjust(lines[0], -600, ledger) == LineState(300, 50)
    ledger.spent[lines[0].key] -= 600  # the adjustment record is written after the counter
    assert await counters.read(lines, ledger) == [LineState(300, 50)]


async def test_counters_adjust_of_absent_counter_loads_then_adds(backend: Backend) -> None:
    """Adjusting a counter that is not loaded loads it from the ledger (which gets the adjustment record only
    afterwards) and applies the delta once; a rebuild after the record lands gives the same value."""
    ledger = LedgerView()
    target = line("k", 1_000)
    ledger.spent[target.key] = 900
    assert await backend.instance().adjust(target, -600, ledger) == LineState(300, 0)
    ledger.spent[target.key] -= 600
    await backend.lose_cache()
    assert await backend.instance().read([target], ledger) == [LineState(300, 0)]


async def test_counters_concurrent_loaders_do_not_double_count(backend: Backend) -> None:
    """Many requests on several instances finding the same counter absent store the ledger value once,
    never N times it."""
    ledger = LedgerView(delay_s=0.02)
    lines = [line("k", 10**9), line("team", 10**9, entity_type="team")]
    ledger.spent[lines[0].key] = 5_000
    ledger.spent[lines[1].key] = 7_000
    instances = [backend.instance() for _ in range(4)]
    reads = [instance.read(lines, ledger) for instance in instances for _ in range(5)]
    holds = [
        instance.try_hold(f"h{i}-{j}", lines, 1, 0, BudgetMode.STANDARD, FAR_S, ledger)
        for i, instance in enumerate(instances)
        for j in range(5)
    ]
    results = await asyncio.gather(*reads, *holds)
    for states in results[: len(reads)]:
        assert isinstance(states, list)
        assert [s.spent_nanos for s in states] == [5_000, 7_000]
    assert all(decision == Admitted(1) for decision in results[len(reads) :])
    assert await instances[0].read(lines, ledger) == [LineState(5_000, 20), LineState(7_000, 20)]


@pytest.mark.parametrize("mode", list(BudgetMode))
async def test_counters_concurrent_holds_keep_the_overshoot_bound(backend: Backend, mode: BudgetMode) -> None:
    """200 concurrent requests over several instances against a key and a team that pay for ~20: a window ends
    at most one request's maximum cost over its limit (standard), never over it (strict); spend == settled costs."""
    ledger = LedgerView()
    max_cost = 1_000_000
    key_line, team_line = line("k", 20 * max_cost), line("team", 17 * max_cost + 12_345, entity_type="team")
    lines = [key_line, team_line]
    instances = [backend.instance() for _ in range(4)]
    rng = random.Random(7)
    charged: list[int] = []

    async def request(i: int) -> None:
        counters = instances[i % len(instances)]
        await asyncio.sleep(rng.random() / 500)
        decision = await counters.try_hold(f"r{i}", lines, max_cost, max_cost // 10, mode, FAR_S, ledger)
        if isinstance(decision, Refused):
            return
        await asyncio.sleep(rng.random() / 500)
        cost = rng.randint(decision.hold_nanos // 2, decision.hold_nanos)
        for target in lines:
            ledger.spent[target.key] += cost
        await counters.settle(f"r{i}", lines, cost)
        charged.append(cost)

    await asyncio.gather(*(request(i) for i in range(200)))
    states = await instances[0].read(lines, ledger)
    assert states == [LineState(sum(charged), 0)] * 2
    bound = 0 if mode is BudgetMode.STRICT else max_cost
    assert sum(charged) <= team_line.limit_nanos + bound  # type: ignore[operator]
    if mode is BudgetMode.STANDARD:
        assert len(charged) >= 18  # no refusal before spent + held reaches the limit
    assert await instances[0].held_count() == 0


def _record(request_id: str, targets: tuple[EntityRef, ...], cost_nanos: int, at_s: float) -> SpendRecord:
    return spend_record(request_id, cost_nanos=cost_nanos, charged_at_us=int(at_s * 1_000_000), targets=targets)


async def test_counters_rebuild_from_sql_ledger_after_cache_loss(backend: Backend, sqlite_ledger: SqlLedger) -> None:
    """After the counter store is lost (restart, FLUSHALL), counters are rebuilt from the SQL ledger exactly,
    even by several instances at once: never additively."""
    key, team = EntityRef(EntityType.KEY, "k"), EntityRef(EntityType.TEAM, "t")
    lines = [line("k", 10**9), line("t", 10**9, entity_type="team"), line("k", None, window="lifetime")]
    counters = backend.instance()
    costs = [1_000 + i for i in range(30)]
    for i, cost in enumerate(costs):
        decision = await counters.try_hold(
            f"r{i}", lines, 5_000, 0, BudgetMode.STANDARD, FAR_S, sqlite_ledger.window_sums
        )
        assert decision == Admitted(5_000)
        await sqlite_ledger.append(_record(f"r{i}", (key, team), cost, T0_S + i))
        await counters.settle(f"r{i}", lines, cost)
    before = await counters.read(lines, sqlite_ledger.window_sums)
    assert before == [LineState(sum(costs), 0)] * 3
    await backend.lose_cache()
    instances = [backend.instance() for _ in range(3)]
    rebuilt = await asyncio.gather(*(i.read(lines, sqlite_ledger.window_sums) for i in instances for _ in range(3)))
    assert all(states == before for states in rebuilt)
    assert await instances[0].read(lines, sqlite_ledger.window_sums) == before
