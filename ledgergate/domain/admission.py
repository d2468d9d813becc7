"""Admission: whether a request may place its hold, and how large the hold is.

A hold is *pending* spend: a limit counts ``spent + held``. Stores evaluate ``decide`` atomically over every
line (memory: no await inside; Redis: the same rule in one Lua script).

Overshoot bound. ``standard``: admitted iff ``spent + held < limit`` on every line, so a window can end at most
one request's maximum cost above its limit, however many requests race. ``strict``: the hold must fit,
``spent + held + hold <= limit``, and the hold is shrunk (``max_tokens`` clamped) to the tightest headroom;
no overshoot as long as a request costs no more than its hold.

Rate lines (``rpm_limit``, ``tpm_limit``, ``max_parallel_requests``) are decided in the same step. Each holds its
own ``amount`` (1 request, or the request's token bound) and admits iff ``spent + held < limit`` in both modes:
for requests and requests in flight that is ``spent + held + 1 <= limit``, exact; a tokens line may end a period
at most one request's token bound over its limit (token counts are only known afterwards, like cost).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class BudgetMode(StrEnum):
    STANDARD = "standard"
    STRICT = "strict"


class CounterUnit(StrEnum):
    """What a counter counts: spend (budgets) or, for rate limits, requests, tokens, or requests in flight."""

    COST_NANOS = "cost_nanos"
    REQUESTS = "requests"
    TOKENS = "tokens"
    PARALLEL = "parallel"  # a hold-only counter: its holds are the requests in flight, its spend stays 0


class CounterKey(NamedTuple):
    """One window of one entity in one period: the unit counters are kept in."""

    entity_type: str
    entity_id: str
    window: str  # Window.key: canonical duration or "lifetime"
    period_start_s: int


class CounterLine(NamedTuple):
    key: CounterKey
    limit_nanos: int | None  # in the line's unit (nanos for cost); None: tracked, not limited
    period_end_s: int
    unit: CounterUnit = CounterUnit.COST_NANOS
    # Rate lines only: what try_hold holds on the line, and what settle adds (settle is given the actual
    # amount, e.g. the tokens used). Cost lines take the call's amounts instead.
    amount: int = 0


class LineState(NamedTuple):
    spent_nanos: int
    held_nanos: int


@dataclass(frozen=True, slots=True)
class Admitted:
    hold_nanos: int


@dataclass(frozen=True, slots=True)
class Refused:
    line_index: int  # the line that refused: the first over limit (standard) or the tightest (strict)
    state: LineState


Decision = Admitted | Refused


def decide(
    states: Sequence[LineState],
    limits: Sequence[int | None],
    max_cost_nanos: int,
    min_cost_nanos: int,
    mode: BudgetMode,
    units: Sequence[CounterUnit] | None = None,
) -> Decision:
    """The admission rule, pure. ``min_cost_nanos`` is the least a strict-mode request can be shrunk to;
    ``units`` defaults to every line counting cost.

    Reported line: standard, the first refusing line; strict, the tightest cost line if one refuses, else the
    first refusing rate line.
    """
    if units is None:
        units = [CounterUnit.COST_NANOS] * len(states)
    rows = list(zip(states, limits, units, strict=True))
    if mode is BudgetMode.STANDARD:
        for index, (state, limit, _) in enumerate(rows):
            if limit is not None and state.spent_nanos + state.held_nanos >= limit:
                return Refused(index, state)
        return Admitted(max_cost_nanos)
    hold_nanos = max_cost_nanos
    headrooms = [
        (limit - state.spent_nanos - state.held_nanos, index)
        for index, (state, limit, unit) in enumerate(rows)
        if limit is not None and unit is CounterUnit.COST_NANOS
    ]
    if headrooms:
        headroom, tightest_index = min(headrooms)
        # An exhausted window refuses even a free request, as in standard mode.
        if headroom <= 0 or headroom < min_cost_nanos:
            return Refused(tightest_index, states[tightest_index])
        hold_nanos = min(max_cost_nanos, headroom)
    for index, (state, limit, unit) in enumerate(rows):
        if unit is not CounterUnit.COST_NANOS and limit is not None and state.spent_nanos + state.held_nanos >= limit:
            return Refused(index, state)
    return Admitted(hold_nanos)


def hold_amount(line: CounterLine, decision: Admitted) -> int:
    """What an admitted request holds on ``line``."""
    return decision.hold_nanos if line.unit is CounterUnit.COST_NANOS else line.amount


def settle_amount(line: CounterLine, cost_nanos: int) -> int:
    """What a settled request adds to ``line``'s spend: a request in flight leaves nothing behind."""
    if line.unit is CounterUnit.COST_NANOS:
        return cost_nanos
    if line.unit is CounterUnit.PARALLEL:
        return 0
    return line.amount
