"""Issue 12 report: "a 30 s window stayed refusing for ~100 s (two boundaries) after two calls", seen once under
heavy load. With the clock pinned, a window refuses for at most the rest of its period, however its holds end:
settled late with an overshoot, released, never settled (in flight or crashed) or expired, and across a restart.

Why it cannot happen: every counter is keyed by its period's start, so a hold, a settle or an expiry only ever
touches the period the request was admitted in (the ledger record carries the admission instant, so a late
settle lands in that period too); the next period is a new counter that starts from the ledger's sum for it.
"""

from __future__ import annotations

import pytest

from ledgergate.domain.admission import BudgetMode
from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.pricing import Usage
from ledgergate.services.request_charging import Refusal, Ticket
from tests.domain.reference_model.conftest import CoreFactory
from tests.domain.reference_model.core import EPOCH_START_S, Core, cost_of, llm_call, window

PERIOD_S = 30
LIMIT_NANOS = cost_of(100, 100)  # one request of 100 + 100 tokens fills the window
LAST_MICROSECOND_S = PERIOD_S - 1e-6


async def _admit(core: Core, request_id: str) -> Ticket | Refusal:
    outcome = await core.charger.admit(await core.key("k"), llm_call(request_id, 100, 100))
    assert isinstance(outcome, Ticket | Refusal)
    return outcome


def _at(core: Core, offset_s: float) -> None:
    core.clock.set(EPOCH_START_S + offset_s)


async def _refused_until_the_boundary_then_admitted(core: Core, period: int, probe: str) -> None:
    """Inside period ``period`` the window refuses up to its last microsecond; at its end it admits again."""
    start_s = period * PERIOD_S
    _at(core, start_s + LAST_MICROSECOND_S)
    refused = await _admit(core, f"{probe}-refused")
    assert isinstance(refused, Refusal)
    assert refused.reset_at_s == EPOCH_START_S + start_s + PERIOD_S
    assert refused.retry_after_s == 1  # what the 429's retry-after says: retry at the boundary, not later
    _at(core, start_s + PERIOD_S)
    admitted = await _admit(core, f"{probe}-admitted")
    assert isinstance(admitted, Ticket), admitted
    await core.charger.settle(admitted, None, RequestStatus.ERROR)


@pytest.mark.parametrize("mode", list(BudgetMode))
@pytest.mark.parametrize("ending", ["settled-late-with-overshoot", "released", "never-settled", "expired"])
async def test_30s_window_refuses_no_longer_than_its_period_after_two_calls(
    make_core: CoreFactory, mode: BudgetMode, ending: str
) -> None:
    """The report's sequence, pinned: two calls fill a 30 s window (the second at its last microsecond, so its
    hold is the newest possible), then each way a hold can end. The first admission of the next period passes."""
    core = await make_core(mode, hold_ttl_s=10.0 if ending == "expired" else 900.0)
    await core.create_key("k", window(f"{PERIOD_S}s", LIMIT_NANOS * 2))
    _at(core, 1)
    first = await _admit(core, "first")
    assert isinstance(first, Ticket)
    await core.charger.settle(first, Usage(100, 100), RequestStatus.SUCCESS)
    _at(core, LAST_MICROSECOND_S - 1)
    second = await _admit(core, "second")
    assert isinstance(second, Ticket)
    await _refused_until_the_boundary_then_admitted(core, 0, "p0")

    _at(core, PERIOD_S + 15)  # the second call ends in the next period (slow upstream, loaded machine)
    if ending == "settled-late-with-overshoot":
        await core.charger.settle(second, Usage(100, 10_000), RequestStatus.SUCCESS)  # far over its hold
    elif ending == "released":
        await core.charger.settle(second, None, RequestStatus.ERROR)
    # never-settled: the hold stays live for 900 s on its own period's counter; expired: it lapsed at +38 s.
    admitted = await _admit(core, "p1-after-second-ended")
    assert isinstance(admitted, Ticket), admitted
    await core.charger.settle(admitted, None, RequestStatus.ERROR)

    await core.restart()  # counters rebuilt from the ledger: the late charge is in period 0, not here
    for period in (1, 2, 3):
        _at(core, period * PERIOD_S + 16)
        for filling in ("a", "b"):  # two full requests fill the window in both modes
            filler = await _admit(core, f"fill-{period}-{filling}")
            assert isinstance(filler, Ticket), filler
            await core.charger.settle(filler, Usage(100, 100), RequestStatus.SUCCESS)
        await _refused_until_the_boundary_then_admitted(core, period, f"p{period}")
