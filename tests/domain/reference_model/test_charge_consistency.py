"""Regressions the model tests found: a hold and its record in different periods; a repeat settle charging twice."""

from __future__ import annotations

import math

from ledgergate.domain.admission import BudgetMode
from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.pricing import Usage
from ledgergate.services.request_charging import Ticket
from tests.domain.reference_model.conftest import CoreFactory
from tests.domain.reference_model.core import EPOCH_START_S, Core, expected_period, llm_call, window


async def _counter_and_ledger(core: Core) -> tuple[int, int]:
    key = await core.key("k")
    ((state, _),) = await core.charger.window_states(key, key.windows)
    start_s, end_s = expected_period(key.windows[0], core.clock.now_s())
    return state.spent_nanos, (await core.db_snapshot()).window_spend("k", key.windows[0].key, start_s, end_s)


async def test_period_of_a_hold_is_the_period_its_record_is_charged_in(make_core: CoreFactory) -> None:
    """A request admitted less than half a microsecond before a period ends (time.time() has ~0.24 us
    resolution) holds and charges the same period. Bug pinned: PeriodClock rounded to the nearest microsecond
    while charged_at_us truncated, so the hold went to the next minute's counter and the record to this minute."""
    core = await make_core(BudgetMode.STANDARD)
    await core.create_key("k", window("1m", 10_000))
    minute_end_s = EPOCH_START_S + 60
    core.clock.set(math.nextafter(minute_end_s, 0.0))  # 59.99999976 s into the minute
    ticket = await core.charger.admit(await core.key("k"), llm_call("edge", 100, 100))
    assert isinstance(ticket, Ticket)
    await core.charger.settle(ticket, Usage(prompt_tokens=100, completion_tokens=100), RequestStatus.SUCCESS)
    core.clock.set(minute_end_s + 1)
    counter, ledger = await _counter_and_ledger(core)
    assert counter == ledger
    (line,) = ticket.lines
    assert line.key.period_start_s * 1_000_000 <= ticket.charged_at_us < line.period_end_s * 1_000_000


async def test_settle_of_a_recorded_request_charges_nothing_in_a_new_process(make_core: CoreFactory) -> None:
    """Settle is repeat-safe per request id through the ledger's unique request id, not only through one
    process' memory: a second settle after a restart (or after 100_000 other settles) charges nothing."""
    core = await make_core(BudgetMode.STANDARD)
    await core.create_key("k", window("1m", 10_000))
    ticket = await core.charger.admit(await core.key("k"), llm_call("once", 100, 100))
    assert isinstance(ticket, Ticket)
    await core.charger.settle(ticket, Usage(prompt_tokens=100, completion_tokens=100), RequestStatus.SUCCESS)
    await core.restart()
    await _counter_and_ledger(core)  # the new process loads the counter (any admission on the key does)
    await core.charger.settle(ticket, Usage(prompt_tokens=100, completion_tokens=100), RequestStatus.SUCCESS)
    counter, ledger = await _counter_and_ledger(core)
    assert counter == ledger
