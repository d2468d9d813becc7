"""Holds that lapse, settles that repeat, and processes that restart: the ledger decides, exactly once."""

from __future__ import annotations

import pytest

from ledgergate.domain.admission import BudgetMode
from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.pricing import Usage
from ledgergate.services.request_charging import Refusal, Ticket
from tests.domain.reference_model.conftest import CoreFactory
from tests.domain.reference_model.core import Core, cost_of, expected_period, llm_call, window

HOLD_TTL_S = 20.0


async def _admit(core: Core, request_id: str, input_tokens: int, max_tokens: int) -> Ticket | Refusal:
    outcome = await core.charger.admit(await core.key("k"), llm_call(request_id, input_tokens, max_tokens))
    assert isinstance(outcome, Ticket | Refusal)
    return outcome


async def _minute_state(core: Core) -> tuple[int, int, int]:
    """(counter spent, counter held, ledger spend) of key ``k``'s minute window, now."""
    await core.counters.held_count()  # sweeps lapsed holds, as admission does
    key = await core.key("k")
    ((state, _),) = await core.charger.window_states(key, key.windows[:1])
    start_s, end_s = expected_period(key.windows[0], core.clock.now_s())
    db = await core.db_snapshot()
    return state.spent_nanos, state.held_nanos, db.window_spend("k", key.windows[0].key, start_s, end_s)


async def test_hold_expiry_frees_the_window_and_a_late_settle_charges_once(make_core: CoreFactory) -> None:
    """A hold never settled stops counting after hold_ttl_s (a crashed request cannot pin a budget); its late
    settle still charges the full cost, once, however often it is repeated (settle is repeat-safe per request
    id)."""
    core = await make_core(BudgetMode.STANDARD, hold_ttl_s=HOLD_TTL_S)
    await core.create_key("k", window("1m", 5_000))
    core.clock.advance(1.5)
    first = await _admit(core, "first", 1_000, 1_000)  # holds 6_000 > the limit: standard admits from 0
    assert isinstance(first, Ticket) and first.hold_nanos == cost_of(1_000, 1_000) == 6_000
    blocked = await _admit(core, "blocked", 10, 10)
    assert isinstance(blocked, Refusal) and blocked.state.held_nanos == 6_000

    core.clock.advance(HOLD_TTL_S - 0.001)
    assert isinstance(await _admit(core, "still-blocked", 10, 10), Refusal)
    core.clock.advance(0.001)  # the hold lapses exactly at admission + ttl, still inside the same minute
    second = await _admit(core, "second", 10, 10)
    assert isinstance(second, Ticket)
    assert await _minute_state(core) == (0, second.hold_nanos, 0)

    late = cost_of(1_000, 500)
    await core.charger.settle(first, Usage(prompt_tokens=1_000, completion_tokens=500), RequestStatus.SUCCESS)
    await core.charger.settle(first, Usage(prompt_tokens=1_000, completion_tokens=900), RequestStatus.SUCCESS)
    await core.charger.settle(first, None, RequestStatus.ERROR)
    assert await _minute_state(core) == (late, second.hold_nanos, late)

    await core.charger.settle(second, None, RequestStatus.ERROR)
    assert await _minute_state(core) == (late, 0, late)
    assert (await core.db_snapshot()).totals() == (2, late)


async def test_hold_expiry_across_a_period_end_charges_the_admission_period(make_core: CoreFactory) -> None:
    """A request admitted in one minute and settled after its hold lapsed in the next is charged to the minute
    it was admitted in, in the counters as in the ledger; the new minute starts from zero."""
    core = await make_core(BudgetMode.STRICT, hold_ttl_s=HOLD_TTL_S)
    await core.create_key("k", window("1m", 5_000), window("1h", 50_000))
    core.clock.advance(55.0)
    ticket = await _admit(core, "slow", 1_000, 200)
    assert isinstance(ticket, Ticket)
    core.clock.advance(HOLD_TTL_S + 1)  # next minute, hold lapsed
    assert await _minute_state(core) == (0, 0, 0)
    await core.charger.settle(ticket, Usage(prompt_tokens=1_000, completion_tokens=200), RequestStatus.SUCCESS)
    assert await _minute_state(core) == (0, 0, 0)
    key = await core.key("k")
    ((hour, _),) = await core.charger.window_states(key, key.windows[1:])
    assert hour.spent_nanos == cost_of(1_000, 200)


async def _spend_until_refused(core: Core) -> tuple[int, Refusal]:
    spent = 0
    for index in range(100):
        outcome = await _admit(core, f"spend-{index}", 1_000, 1_000)
        if isinstance(outcome, Refusal):
            return spent, outcome
        completion_tokens = outcome.max_tokens_to_send or 1_000  # strict mode clamps the last one
        usage = Usage(prompt_tokens=1_000, completion_tokens=completion_tokens)
        record = await core.charger.settle(outcome, usage, RequestStatus.SUCCESS)
        spent += record.cost_nanos
    raise AssertionError("the budget never refused")


@pytest.mark.parametrize("mode", [BudgetMode.STANDARD, BudgetMode.STRICT])
async def test_restart_forgives_nothing(make_core: CoreFactory, mode: BudgetMode) -> None:
    """Spend before a restart is still enforced after it, exactly once however many restarts follow (LiteLLM bug
    class: counters lost on restart, or reseeded additively from the spend logs)."""
    core = await make_core(mode)
    await core.create_key("k", window(None, 1_000_000), window("1h", 20_000))
    core.clock.advance(120.0)
    spent, refusal = await _spend_until_refused(core)
    assert refusal.window.key == "1h" and refusal.state.spent_nanos == spent
    assert spent >= 20_000 if mode is BudgetMode.STANDARD else spent <= 20_000

    for restart in range(3):
        await core.restart()
        core.clock.advance(60.0)  # still the same hour
        after = await _admit(core, f"after-restart-{restart}", 1_000, 1_000)
        assert isinstance(after, Refusal), "a restart must not reopen a spent window"
        assert (after.window.key, after.state.spent_nanos, after.state.held_nanos) == ("1h", spent, 0)
        key = await core.key("k")
        states = await core.charger.window_states(key, key.windows)
        assert [state.spent_nanos for state, _ in states] == [spent, spent]

    core.clock.set(core.clock.now_s() - core.clock.now_s() % 3600 + 3600)  # the next hour resets the window
    assert isinstance(await _admit(core, "next-hour", 1_000, 1_000), Ticket)


async def test_restart_keeps_admin_resets(make_core: CoreFactory) -> None:
    """A reset is an adjustment in the ledger, so it survives a restart and is applied exactly once."""
    core = await make_core()
    await core.create_key("k", window("1m", 10_000))
    core.clock.advance(3.0)
    spent, _ = await _spend_until_refused(core)
    await core.resets.reset(await core.key("k"), 0.000002, None, actor="admin")  # 2_000 nanos
    assert (await _minute_state(core))[0::2] == (2_000, 2_000)
    await core.restart()
    await core.restart()
    assert await _minute_state(core) == (2_000, 0, 2_000)
    assert isinstance(await _admit(core, "after-reset", 10, 10), Ticket)
    assert spent > 2_000
