"""Issue 12 report ("a 30 s window stayed refusing for ~100 s"), on every counter store with the clock pinned: a
hold, its late settle (with an overshoot) and its expiry touch only the period it was admitted in, so the next
period's counter admits from its first instant, whatever happened to the previous period's holds."""

from __future__ import annotations

from ledgergate.domain.admission import Admitted, BudgetMode, CounterKey, CounterLine, LineState, Refused
from tests.storage.contract.backends import T0_S, Backend, LedgerView, ManualClock

PERIOD_S = 30
LIMIT = 1_000
HOLD_TTL_S = 900


def _period(index: int) -> CounterLine:
    """Key k's 30 s window in its ``index``-th period from T0."""
    start_s = T0_S + index * PERIOD_S
    return CounterLine(CounterKey("key", "k", "30s", start_s), LIMIT, start_s + PERIOD_S)


async def test_a_live_or_expired_hold_and_its_late_overshooting_settle_stay_in_their_own_period(
    backend: Backend, clock: ManualClock
) -> None:
    ledger = LedgerView()
    counters = backend.instance()
    clock.now = T0_S + 29.999999  # admitted at the last microsecond of period 0; ends much later, or never
    assert await counters.try_hold("late", [_period(0)], LIMIT, 0, BudgetMode.STANDARD, clock.now + 900, ledger) == (
        Admitted(LIMIT)
    )
    assert isinstance(
        await counters.try_hold("p0", [_period(0)], 1, 0, BudgetMode.STANDARD, T0_S + 999, ledger), Refused
    )

    clock.now = T0_S + PERIOD_S  # the boundary: period 1 admits although period 0's hold is live
    assert await counters.try_hold("p1", [_period(1)], 1, 0, BudgetMode.STANDARD, clock.now + 900, ledger) == Admitted(
        1
    )
    await counters.release("p1")

    clock.now = T0_S + 3 * PERIOD_S + 5  # period 3: the late request settles 10x over its hold, in period 0
    ledger.spent[_period(0).key] += 10 * LIMIT  # the ledger record carries the admission instant
    await counters.settle("late", [_period(0)], 10 * LIMIT)
    assert await counters.read([_period(0), _period(3)], ledger) == [LineState(10 * LIMIT, 0), LineState(0, 0)]
    assert await counters.try_hold("p3", [_period(3)], 1, 0, BudgetMode.STRICT, clock.now + 900, ledger) == Admitted(1)

    clock.now = T0_S + 4 * PERIOD_S  # a crashed request's hold pins period 4 until it expires, never period 5
    crash_expiry_s = clock.now + HOLD_TTL_S
    decision = await counters.try_hold("crash", [_period(4)], LIMIT, 0, BudgetMode.STANDARD, crash_expiry_s, ledger)
    assert decision == Admitted(LIMIT)
    clock.now = T0_S + 5 * PERIOD_S
    assert await counters.read([_period(4), _period(5)], ledger) == [LineState(0, LIMIT), LineState(0, 0)]
    assert await counters.try_hold("p5", [_period(5)], 1, 0, BudgetMode.STANDARD, clock.now + 900, ledger) == Admitted(
        1
    )
    clock.now = crash_expiry_s
    assert await counters.read([_period(4)], ledger) == [LineState(0, 0)]
