"""200 requests racing on one key: admission stays atomic and the ledger and counters agree afterwards."""

from __future__ import annotations

import asyncio
import random

import pytest

from ledgergate.domain.admission import BudgetMode
from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.pricing import Usage
from ledgergate.services.request_charging import Refusal, Ticket
from tests.domain.reference_model.conftest import CoreFactory
from tests.domain.reference_model.core import Core, cost_of, expected_period, llm_call, window

INPUT_TOKENS = 1_000
MAX_TOKENS = 500
MAX_COST = cost_of(INPUT_TOKENS, MAX_TOKENS)  # 3_750 nanos
LIMIT = 10 * MAX_COST  # the minute window pays for ten requests at their maximum cost
REQUESTS = 200
PRIOR_SPEND = cost_of(0, 100)  # charged before a restart, so the burst races on loading a non-empty counter


async def _request(core: Core, index: int, rng: random.Random, full_usage: bool) -> tuple[bool, int]:
    """One admit, a few scheduling points, one settle: (admitted, cost charged)."""
    for _ in range(rng.randint(0, 2)):
        await asyncio.sleep(0)
    key = await core.key("hot")
    ticket = await core.charger.admit(key, llm_call(f"burst-{index}", INPUT_TOKENS, MAX_TOKENS))
    if isinstance(ticket, Refusal):
        return False, 0
    assert isinstance(ticket, Ticket)
    for _ in range(rng.randint(0, 3)):
        await asyncio.sleep(0)
    cap = ticket.max_tokens_to_send or MAX_TOKENS  # strict mode may clamp the output
    if full_usage:
        usage = Usage(prompt_tokens=INPUT_TOKENS, completion_tokens=cap)
    else:
        usage = Usage(prompt_tokens=rng.randint(0, INPUT_TOKENS), completion_tokens=rng.randint(0, cap))
    assert cost_of(usage.prompt_tokens, usage.completion_tokens) <= ticket.hold_nanos
    record = await core.charger.settle(ticket, usage, RequestStatus.SUCCESS)
    return True, record.cost_nanos


@pytest.mark.parametrize("mode", [BudgetMode.STANDARD, BudgetMode.STRICT])
@pytest.mark.parametrize("full_usage", [True, False], ids=["full-usage", "random-usage"])
async def test_concurrent_admission_overshoot_is_bounded(
    make_core: CoreFactory, mode: BudgetMode, full_usage: bool
) -> None:
    """However 200 admit+settle coroutines interleave on one key: standard mode overshoots the window by less
    than one request's maximum cost, strict mode never exceeds it, and afterwards the counter equals the ledger
    sum exactly (bug classes: check-then-charge races letting a burst through; a counter loaded once per racing
    request after a restart, i.e. reseeded additively)."""
    core = await make_core(mode)
    await core.create_key("hot", window("1m", LIMIT), window("1h", 100 * LIMIT))
    core.clock.advance(7.25)
    warmup = await core.charger.admit(await core.key("hot"), llm_call("warmup", 0, 100))
    assert isinstance(warmup, Ticket)
    await core.charger.settle(warmup, Usage(completion_tokens=100), RequestStatus.SUCCESS)
    await core.restart()  # the burst starts on empty counters, so every request races on the lazy load

    rng = random.Random(f"burst-{mode}-{full_usage}")
    outcomes = await asyncio.gather(*(_request(core, index, rng, full_usage) for index in range(REQUESTS)))

    admitted = sum(1 for ok, _ in outcomes if ok)
    charged = PRIOR_SPEND + sum(cost for _, cost in outcomes)
    if full_usage:
        # Every settle equals its hold, so spent + held only grows: exactly the requests that fit are admitted.
        # Standard: admitted while spent + held < limit. Strict: nine fit whole, the tenth is clamped to the
        # remaining 3_300 nanos (more than a one-token request's 1_505) and fills the window exactly.
        assert admitted == 10
        if mode is BudgetMode.STRICT:
            assert charged == LIMIT
    if mode is BudgetMode.STANDARD:
        assert charged < LIMIT + MAX_COST
    else:
        assert charged <= LIMIT
    assert admitted < REQUESTS, "the window must have refused part of the burst"

    key = await core.key("hot")
    states = await core.charger.window_states(key, key.windows)
    db = await core.db_snapshot()
    now_s = core.clock.now_s()
    for target, (state, _) in zip(key.windows, states, strict=True):
        start_s, end_s = expected_period(target, now_s)
        assert state.held_nanos == 0
        assert state.spent_nanos == charged == db.window_spend("hot", target.key, start_s, end_s)
        (ledger_sum,) = await core.ledger.window_sums([core.charger.counter_line(key.ref, target).key], [end_s])
        assert ledger_sum == charged
    assert db.totals() == (admitted + 1, charged)
    assert await core.ledger.lifetime_spend(key.ref) == charged
