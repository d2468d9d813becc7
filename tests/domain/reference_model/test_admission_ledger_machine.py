"""Stateful model test: random admits, settles, releases, clock moves, admin resets and restarts against the
real ``RequestCharger`` over ``MemoryCounters`` and a SQLite ledger, checked step by step against a reference.

Each example runs on its own event loop (hypothesis' stateful testing is synchronous) and its own database file.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from ledgergate.domain.admission import BudgetMode
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import Adjustment, RequestStatus
from ledgergate.domain.pricing import Usage
from ledgergate.domain.windows import Window
from ledgergate.services.request_charging import Refusal, Ticket
from tests.domain.reference_model.core import (
    EPOCH_START_S,
    MAX_OUTPUT_TOKENS,
    Core,
    MonotonicClock,
    cost_of,
    expected_period,
    llm_call,
    window,
)
from tests.domain.reference_model.reference import ModelTicket, ReferenceLedger

T = TypeVar("T")

HOLD_TTL_S = 300.0
# Each window pays for one to a few requests (a request's maximum cost is at most 2000 x 1.5 + 3 x 1000 x 4.5 = 16_500
# nanos), so refusals, overshoot and strict-mode clamping all happen within 30 steps.
KEYS: dict[str, tuple[Window | None, tuple[Window, ...]]] = {
    "key-a": (window("1m", 12_000), (window("1h", 40_000),)),
    "key-b": (window("1h", 25_000), (window("1m", 9_000),)),
    "key-c": (window(None, 50_000), (window("1m", 15_000),)),  # a lifetime primary window
}
KEY_IDS = tuple(KEYS)
PICK = st.integers(min_value=0, max_value=1_000)
PERCENT = st.integers(min_value=0, max_value=100)


class AdmissionLedgerMachine(RuleBasedStateMachine):
    def __init__(self, db_path: Path, mode: BudgetMode) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = MonotonicClock(EPOCH_START_S)
        self.core = Core(db_path, self.clock, mode, HOLD_TTL_S)
        self.model = ReferenceLedger()
        self.mode = mode
        self.request_ids = itertools.count()
        try:
            self.run(self._open())
        except BaseException:
            self.teardown()  # hypothesis only tears down machines that were built
            raise

    async def _open(self) -> None:
        await self.core.open()
        for key_id, (primary, limits) in KEYS.items():
            await self.core.create_key(key_id, primary, *limits)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            self.run(self.core.close())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    @rule(
        key_index=st.integers(min_value=0, max_value=len(KEY_IDS) - 1),
        input_tokens=st.integers(min_value=1, max_value=2_000),
        max_tokens=st.none() | st.integers(min_value=1, max_value=MAX_OUTPUT_TOKENS + 200),
        n=st.integers(min_value=1, max_value=3),
    )
    def admit(self, key_index: int, input_tokens: int, max_tokens: int | None, n: int) -> None:
        key_id = KEY_IDS[key_index]
        now_s = self.clock.now_s()
        request_id = f"req-{next(self.request_ids)}"
        key = self.run(self.core.key(key_id))
        output_cap = min(
            max_tokens or MAX_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS
        )  # a client cap is bounded by the deployment's
        max_cost = cost_of(input_tokens, output_cap * n)
        min_cost = cost_of(input_tokens, n)
        expected = self.model.expected(key_id, key.windows, now_s, max_cost, min_cost, self.mode)
        outcome = self.run(self.core.charger.admit(key, llm_call(request_id, input_tokens, max_tokens, n)))
        if expected.hold_nanos is None:
            assert isinstance(outcome, Refusal), f"expected a refusal, got {outcome!r}; model {expected}"
            refused = key.windows[expected.refused_index or 0]
            assert outcome.window.key == refused.key
            assert (outcome.state.spent_nanos, outcome.state.held_nanos) == expected.states[expected.refused_index or 0]
            assert outcome.reset_at_s == expected_period(refused, now_s)[1]
            return
        assert isinstance(outcome, Ticket), f"expected admission, got {outcome!r}; model {expected}"
        assert outcome.hold_nanos == expected.hold_nanos
        assert outcome.charged_at_us == int(now_s * 1_000_000)
        # The cap sent upstream is never above what the hold pays for (and always set: the upstream is capped).
        assert outcome.max_tokens_to_send is not None and outcome.max_tokens_to_send <= output_cap
        assert cost_of(input_tokens, outcome.max_tokens_to_send * n) <= outcome.hold_nanos
        counters = tuple((key_id, w.key, expected_period(w, now_s)[0]) for w in key.windows)
        ticket = ModelTicket(outcome, now_s, now_s + HOLD_TTL_S, outcome.hold_nanos, counters)
        self.model.admitted(ticket, max_cost)

    def _open_ticket(self, pick: int) -> ModelTicket:
        tickets = list(self.model.open.values())
        return tickets[pick % len(tickets)]

    @precondition(lambda self: self.model.open)
    @rule(pick=PICK, prompt_percent=PERCENT, completion_percent=PERCENT)
    def settle(self, pick: int, prompt_percent: int, completion_percent: int) -> None:
        """Actual usage within what the upstream may produce, so the cost never exceeds the hold."""
        ticket = self._open_ticket(pick)
        call = ticket.ticket.call
        cap = ticket.ticket.max_tokens_to_send or 0
        usage = Usage(
            prompt_tokens=call.input_tokens_bound * prompt_percent // 100,
            completion_tokens=cap * call.n * completion_percent // 100,
        )
        cost = cost_of(usage.prompt_tokens, usage.completion_tokens)
        assert cost <= ticket.hold_nanos
        self._settle(ticket, usage, RequestStatus.SUCCESS, cost)

    @precondition(lambda self: self.model.open)
    @rule(pick=PICK)
    def release(self, pick: int) -> None:
        """An upstream error before any output: a zero-cost record, and the hold is gone."""
        self._settle(self._open_ticket(pick), None, RequestStatus.ERROR, 0)

    def _settle(self, ticket: ModelTicket, usage: Usage | None, status: RequestStatus, cost: int) -> None:
        record = self.run(self.core.charger.settle(ticket.ticket, usage, status))
        assert record.cost_nanos == cost
        assert record.charged_at_us == int(ticket.admitted_at_s * 1_000_000)
        self.model.settle(ticket.ticket.call.request_id, cost, status, record.ended_at_us)

    @precondition(lambda self: self.model.settled)
    @rule(pick=PICK, completion_tokens=st.integers(min_value=1, max_value=500))
    def settle_again(self, pick: int, completion_tokens: int) -> None:
        """A repeated settle (another usage, even; after a restart, even) changes nothing: settle is
        repeat-safe per request id."""
        tickets = list(self.model.settled.values())
        ticket = tickets[pick % len(tickets)]
        self.run(
            self.core.charger.settle(ticket.ticket, Usage(completion_tokens=completion_tokens), RequestStatus.SUCCESS)
        )

    @rule(
        move=st.sampled_from(
            ["seconds", "minute_end", "minute_edge", "minute_start", "next_hour", "hold_ttl", "hours"]
        ),
        seconds=st.integers(min_value=1, max_value=45),
    )
    def advance(self, move: str, seconds: int) -> None:
        now_s = self.clock.now_s()
        minute_end = (int(now_s) // 60 + 1) * 60
        hour_end = (int(now_s) // 3600 + 1) * 3600
        targets = {
            "seconds": now_s + seconds,
            "minute_end": minute_end - 0.001,  # the last millisecond of the period
            "minute_edge": math.nextafter(minute_end, 0.0),  # under half a microsecond before the period ends
            "minute_start": float(minute_end),
            "next_hour": hour_end + seconds / 1000,
            "hold_ttl": now_s + HOLD_TTL_S,  # a hold expires exactly at admission + ttl
            "hours": now_s + 2 * 3600 + seconds,
        }
        self.clock.set(max(now_s, targets[move]))
        self.model.advanced_to(self.clock.now_s())

    @rule(
        key_index=st.integers(min_value=0, max_value=len(KEY_IDS) - 1),
        window_index=st.integers(min_value=0, max_value=1),
        named=st.booleans(),
        percent=PERCENT,
    )
    def reset(self, key_index: int, window_index: int, named: bool, percent: int) -> None:
        """An admin reset to a value <= the current spend (and <= the limit), through ``SpendResets``."""
        key_id = KEY_IDS[key_index]
        key = self.run(self.core.key(key_id))
        now_s = self.clock.now_s()
        if not named:
            window_index = 0  # no budget_duration: the primary window
        target = key.windows[window_index]
        previous = self.model.spent(key_id, target, now_s)
        assert target.max_budget_nanos is not None
        reset_to = min(previous, target.max_budget_nanos) * percent // 100
        duration = target.duration.text if named and target.duration is not None else None
        if named and target.duration is None:
            return  # a lifetime window cannot be named by a duration
        answer = self.run(self.core.resets.reset(key, reset_to / 1_000_000_000, duration, actor="model-test"))
        assert answer["previous_spend"] == previous / 1_000_000_000
        start_s, _ = expected_period(target, now_s)
        self.model.adjustments.append(
            Adjustment(
                adjustment_id=answer["adjustment_id"],
                entity=EntityRef(EntityType.KEY, key_id),
                window=target.key,
                period_start_s=start_s,
                previous_nanos=previous,
                new_nanos=reset_to,
                actor="model-test",
                reason="",
                created_at_us=int(now_s * 1_000_000),
            )
        )

    @rule()
    def restart(self) -> None:
        """A new process over the same database: counters are rebuilt lazily from the ledger."""
        self.run(self.core.restart())
        self.model.restarted()

    @invariant()
    def counters_equal_ledger_equal_model(self) -> None:
        self.run(self._check())

    async def _check(self) -> None:
        now_s = self.clock.now_s()
        await self.core.counters.held_count()  # sweeps expired holds, as the next admission would
        db = await self.core.db_snapshot()
        for key_id in KEY_IDS:
            key = await self.core.key(key_id)
            states = await self.core.charger.window_states(key, key.windows)
            for target, (state, reset_at_s) in zip(key.windows, states, strict=True):
                start_s, end_s = expected_period(target, now_s)
                assert reset_at_s == end_s, f"{key_id} {target.key}: counter period ends {reset_at_s}, not {end_s}"
                model_spent = self.model.spent(key_id, target, now_s)
                db_spent = db.window_spend(key_id, target.key, start_s, end_s)
                where = f"{key_id} window {target.key} period {start_s}"
                assert state.spent_nanos == model_spent == db_spent, (where, state, model_spent, db_spent)
                counter = (key_id, target.key, start_s)
                assert state.held_nanos == self.model.held(counter, now_s), (where, state)
                assert target.max_budget_nanos is not None
                allowance = self.model.expired_holds(counter)
                if self.mode is BudgetMode.STANDARD:
                    allowance += self.model.largest_max_cost
                assert state.spent_nanos <= target.max_budget_nanos + allowance, (where, state, allowance)
        assert db.totals() == self.model.total()


MACHINE_SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("mode", [BudgetMode.STANDARD, BudgetMode.STRICT])
def test_admission_ledger_matches_reference_model(tmp_path: Path, mode: BudgetMode) -> None:
    """Counters == ledger == reference model for every key and window after every step, across period ends,
    hold expiry, admin resets and restarts; overshoot stays within one max cost (standard) or zero (strict),
    apart from holds that expired unsettled. Bug classes: counters drifting from the spend logs, counters
    reseeded additively or lost on restart, resets that do not stick."""
    run_state_machine_as_test(_machine_over(tmp_path, mode), settings=MACHINE_SETTINGS)


def _machine_over(root: Path, mode: BudgetMode) -> type[AdmissionLedgerMachine]:
    """The machine class hypothesis instantiates once per example, each on a fresh database file."""
    examples = itertools.count()

    class Machine(AdmissionLedgerMachine):
        def __init__(self) -> None:
            super().__init__(root / f"{mode}-example-{next(examples)}.db", mode)

    return Machine
