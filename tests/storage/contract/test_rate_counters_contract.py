"""The ``Counters`` contract for rate-limit lines (requests, tokens, requests in flight), on memory and Redis.

Rate lines are decided in the same ``try_hold`` as budget lines: all lines or none, one atomic step.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from ledgergate.domain.admission import (
    Admitted,
    BudgetMode,
    CounterKey,
    CounterLine,
    CounterUnit,
    LineState,
    Refused,
    decide,
    hold_amount,
)
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import RequestStatus, SpendRecord
from ledgergate.domain.rate_limits import with_tokens_used
from ledgergate.domain.windows import FAR_FUTURE_S
from ledgergate.storage.sql.ledger import SqlLedger
from tests.builders import spend_record
from tests.storage.contract.backends import PERIOD_END_S, T0_S, Backend, LedgerView, ManualClock, line

FAR_S = T0_S + 10_000
MINUTE_END_S = T0_S + 60
WINDOW = {CounterUnit.REQUESTS: "rpm", CounterUnit.TOKENS: "tpm", CounterUnit.PARALLEL: "parallel"}


def rate(
    entity_id: str, unit: CounterUnit, limit: int | None, amount: int = 1, entity_type: str = "key"
) -> CounterLine:
    """A rate line of the minute starting at T0 (requests in flight: the period-less counter)."""
    if unit is CounterUnit.PARALLEL:
        return CounterLine(CounterKey(entity_type, entity_id, "parallel", 0), limit, FAR_FUTURE_S, unit, amount)
    return CounterLine(CounterKey(entity_type, entity_id, WINDOW[unit], T0_S), limit, MINUTE_END_S, unit, amount)


@pytest.mark.parametrize("mode", list(BudgetMode))
async def test_rate_counters_decisions_match_decide(backend: Backend, mode: BudgetMode) -> None:
    """Mixed budget and rate lines are decided exactly as ``admission.decide`` with units (both modes), and an
    admitted request holds the decided cost on cost lines and its own amount on rate lines."""
    rng = random.Random(11 if mode is BudgetMode.STANDARD else 12)
    ledger = LedgerView()
    counters = backend.instance()
    for case in range(50):
        lines, states = [], []
        for i in range(rng.randint(1, 4)):
            unit = rng.choice(list(CounterUnit))
            limit = rng.choice([None, 0, 1, 5, 100, 2**60])
            base = limit if limit is not None else 50
            # a hold-only counter (requests in flight) is never spent
            spent = 0 if unit is CounterUnit.PARALLEL else max(0, base + rng.choice([-3, -1, 0, 1]))
            amount = rng.choice([1, 7, 2**55]) if unit is CounterUnit.TOKENS else 1
            if unit is CounterUnit.COST_NANOS:
                target = line(f"c{case}-{i}", limit)
            else:
                target = rate(f"c{case}-{i}", unit, limit, amount)
            ledger.spent[target.key] = spent
            held = rng.choice([0, 0, 1, 2])
            if held:  # placed by an earlier request on the same counter
                earlier = [target._replace(limit_nanos=None, amount=held)]
                await counters.try_hold(f"pre-{case}-{i}", earlier, held, 0, BudgetMode.STANDARD, FAR_S, ledger)
            lines.append(target)
            states.append(LineState(spent, held))
        max_cost = rng.choice([0, 5, 2**58])
        expected = decide(states, [t.limit_nanos for t in lines], max_cost, 1, mode, [t.unit for t in lines])
        decision = await counters.try_hold(f"h-{case}", lines, max_cost, 1, mode, FAR_S, ledger)
        assert decision == expected, (lines, states, max_cost)
        added = [hold_amount(t, decision) if isinstance(decision, Admitted) else 0 for t in lines]
        after = await counters.read(lines, ledger)
        assert after == [LineState(s.spent_nanos, s.held_nanos + a) for s, a in zip(states, added, strict=True)]


@pytest.mark.parametrize("mode", list(BudgetMode))
async def test_rate_counters_requests_line_admits_exactly_the_limit(backend: Backend, mode: BudgetMode) -> None:
    """rpm_limit N admits exactly N requests in the minute, held or settled, in both budget modes."""
    ledger = LedgerView()
    rpm = rate("k", CounterUnit.REQUESTS, 3)
    counters = backend.instance()
    assert await counters.try_hold("r0", [rpm], 10, 0, mode, FAR_S, ledger) == Admitted(10)
    ledger.spent[rpm.key] += 1
    await counters.settle("r0", [rpm], 10)
    assert await counters.try_hold("r1", [rpm], 10, 0, mode, FAR_S, ledger) == Admitted(10)
    assert await counters.try_hold("r2", [rpm], 10, 0, mode, FAR_S, ledger) == Admitted(10)
    assert await counters.try_hold("r3", [rpm], 10, 0, mode, FAR_S, ledger) == Refused(0, LineState(1, 2))
    assert await counters.read([rpm], ledger) == [LineState(1, 2)]


async def test_rate_counters_tokens_line_holds_the_bound_and_settles_the_usage(backend: Backend) -> None:
    """A tokens line holds the request's token bound, settles the tokens used, and admits while spent + held is
    under the limit (so one request may end the minute at most its bound over)."""
    ledger = LedgerView()
    counters = backend.instance()
    tpm = rate("k", CounterUnit.TOKENS, 1_000, amount=600)
    assert await counters.try_hold("r1", [tpm], 10, 0, BudgetMode.STRICT, FAR_S, ledger) == Admitted(10)
    assert await counters.try_hold("r2", [tpm], 10, 0, BudgetMode.STRICT, FAR_S, ledger) == Admitted(10)
    assert await counters.read([tpm], ledger) == [LineState(0, 1_200)]
    assert isinstance(await counters.try_hold("r3", [tpm], 10, 0, BudgetMode.STANDARD, FAR_S, ledger), Refused)
    ledger.spent[tpm.key] += 250
    await counters.settle("r1", [with_tokens_used(tpm, 250)], 10)
    assert await counters.read([tpm], ledger) == [LineState(250, 600)]
    ledger.spent[tpm.key] += 100
    await counters.settle("r2", [with_tokens_used(tpm, 100)], 10)
    await counters.settle("r2", [with_tokens_used(tpm, 100)], 10)  # a repeated settle counts once
    assert await counters.read([tpm], ledger) == [LineState(350, 0)]


async def test_rate_counters_parallel_line_counts_only_requests_in_flight(backend: Backend, clock: ManualClock) -> None:
    """max_parallel_requests: each admitted request holds 1 until settled, released or expired; a settle adds
    nothing, so the next request is admitted as soon as one finishes."""
    ledger = LedgerView()
    counters = backend.instance()
    parallel = rate("k", CounterUnit.PARALLEL, 2)
    assert await counters.try_hold("p1", [parallel], 10, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(10)
    assert await counters.try_hold("p2", [parallel], 10, 0, BudgetMode.STANDARD, T0_S + 5, ledger) == Admitted(10)
    assert await counters.try_hold("p3", [parallel], 10, 0, BudgetMode.STANDARD, FAR_S, ledger) == Refused(
        0, LineState(0, 2)
    )
    await counters.settle("p1", [parallel], 10)
    assert await counters.read([parallel], ledger) == [LineState(0, 1)]
    assert await counters.try_hold("p4", [parallel], 10, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(10)
    await counters.release("p4")
    clock.now = T0_S + 5  # p2's instance died: its hold expires
    assert await counters.read([parallel], ledger) == [LineState(0, 0)]


async def test_rate_counters_rate_and_budget_lines_hold_all_or_nothing(backend: Backend) -> None:
    """A rate refusal places no hold on the budget windows, and a budget refusal none on the rate counters."""
    ledger = LedgerView()
    counters = backend.instance()
    budget, rpm, parallel = line("k", 1_000), rate("k", CounterUnit.REQUESTS, 1), rate("k", CounterUnit.PARALLEL, 5)
    ledger.spent[rpm.key] = 1
    assert await counters.try_hold("r1", [budget, parallel, rpm], 10, 0, BudgetMode.STRICT, FAR_S, ledger) == Refused(
        2, LineState(1, 0)
    )
    full = line("full", 10)
    ledger.spent[full.key] = 10
    other_rpm = rate("k2", CounterUnit.REQUESTS, 5)
    refused = await counters.try_hold("r2", [full, parallel, other_rpm], 10, 0, BudgetMode.STANDARD, FAR_S, ledger)
    assert refused == Refused(0, LineState(10, 0))
    assert await counters.read([budget, parallel, rpm, other_rpm], ledger) == [
        LineState(0, 0),
        LineState(0, 0),
        LineState(1, 0),
        LineState(0, 0),
    ]
    assert await counters.held_count() == 0


async def test_rate_counters_retried_hold_holds_rate_lines_once(backend: Backend) -> None:
    """A retried try_hold (same hold id) is the same hold: rate counters are not held twice."""
    ledger = LedgerView()
    counters = backend.instance()
    lines = [line("k", 1_000), rate("k", CounterUnit.REQUESTS, 5), rate("k", CounterUnit.TOKENS, 10**6, amount=42)]
    for _ in range(2):
        assert await counters.try_hold("h1", lines, 7, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(7)
    assert await counters.read(lines, ledger) == [LineState(0, 7), LineState(0, 1), LineState(0, 42)]


async def test_rate_counters_concurrent_requests_admit_exactly_the_limit(backend: Backend) -> None:
    """100 concurrent requests over several instances against rpm_limit 10 and max_parallel_requests 4: exactly
    10 admitted in the minute, never more than 4 in flight."""
    ledger = LedgerView()
    rpm, parallel = rate("k", CounterUnit.REQUESTS, 10), rate("k", CounterUnit.PARALLEL, 4)
    instances = [backend.instance() for _ in range(4)]
    rng = random.Random(3)
    in_flight, peak, admitted = 0, 0, 0

    async def request(i: int) -> None:
        nonlocal in_flight, peak, admitted
        counters = instances[i % len(instances)]
        await asyncio.sleep(rng.random() / 200)
        decision = await counters.try_hold(f"r{i}", [rpm, parallel], 1, 0, BudgetMode.STANDARD, FAR_S, ledger)
        if isinstance(decision, Refused):
            return
        admitted += 1
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(rng.random() / 100)
        ledger.spent[rpm.key] += 1
        in_flight -= 1
        await counters.settle(f"r{i}", [rpm, parallel], 1)

    for _ in range(3):  # later rounds find the minute used up
        await asyncio.gather(*(request(i + 1000 * _) for i in range(100)))
    assert admitted == 10
    assert peak <= 4
    assert await instances[0].read([rpm, parallel], ledger) == [LineState(10, 0), LineState(0, 0)]


def _record(request_id: str, key_id: str, at_s: float, prompt: int, completion: int) -> SpendRecord:
    return spend_record(
        request_id,
        cost_nanos=0,
        charged_at_us=int(at_s * 1_000_000),
        targets=(EntityRef(EntityType.KEY, key_id), EntityRef(EntityType.TEAM, "t")),
        prompt_tokens=prompt,
        completion_tokens=completion,
        status=RequestStatus.ERROR if completion == 0 else RequestStatus.SUCCESS,
    )


async def test_rate_counters_rebuild_from_sql_ledger(backend: Backend, sqlite_ledger: SqlLedger) -> None:
    """After the counter store is lost, the minute's requests and tokens are recounted from the ledger (errors
    count as requests), other minutes and other entities excluded; requests in flight restart at 0."""
    for i, (prompt, completion) in enumerate([(10, 5), (7, 0), (100, 20)]):
        await sqlite_ledger.append(_record(f"r{i}", "k", T0_S + 10 * i, prompt, completion))
    await sqlite_ledger.append(_record("before", "k", T0_S - 1, 1_000, 1_000))
    await sqlite_ledger.append(_record("after", "k", MINUTE_END_S, 1_000, 1_000))
    await sqlite_ledger.append(_record("other", "k2", T0_S + 5, 1_000, 1_000))
    lines = [
        rate("k", CounterUnit.REQUESTS, 10),
        rate("k", CounterUnit.TOKENS, 10_000),
        rate("k", CounterUnit.PARALLEL, 2),
        rate("t", CounterUnit.REQUESTS, 10, entity_type="team"),
        line("k", 10**9),
    ]
    assert lines[-1].period_end_s == PERIOD_END_S
    await backend.lose_cache()
    states = await backend.instance().read(lines, sqlite_ledger.window_sums)
    assert states == [LineState(3, 0), LineState(142, 0), LineState(0, 0), LineState(4, 0), LineState(0, 0)]
