"""Admission: whether a request may place its hold, and how large the hold is.

A hold is *pending* spend: a limit counts ``spent + held``. Stores evaluate ``decide`` atomically over every
line (memory: no await inside; Redis: the same rule in one Lua script).

Overshoot bound. ``standard``: admitted iff ``spent + held < limit`` on every line, so a window can end at most
one request's maximum cost above its limit, however many requests race. ``strict``: the hold must fit,
``spent + held + hold <= limit``, and the hold is shrunk (``max_tokens`` clamped) to the tightest headroom;
no overshoot as long as a request costs no more than its hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class BudgetMode(StrEnum):
    STANDARD = "standard"
    STRICT = "strict"


class CounterKey(NamedTuple):
    """One window of one entity in one period: the unit counters are kept in."""

    entity_type: str
    entity_id: str
    window: str  # Window.key: canonical duration or "lifetime"
    period_start_s: int


class CounterLine(NamedTuple):
    key: CounterKey
    limit_nanos: int | None  # None: tracked, not limited (an entity without a budget in this window)
    period_end_s: int


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
) -> Decision:
    """The admission rule, pure. ``min_cost_nanos`` is the least a strict-mode request can be shrunk to."""
    if mode is BudgetMode.STANDARD:
        for index, (state, limit) in enumerate(zip(states, limits, strict=True)):
            if limit is not None and state.spent_nanos + state.held_nanos >= limit:
                return Refused(index, state)
        return Admitted(max_cost_nanos)
    headrooms = [
        (limit - state.spent_nanos - state.held_nanos, index)
        for index, (state, limit) in enumerate(zip(states, limits, strict=True))
        if limit is not None
    ]
    if not headrooms:
        return Admitted(max_cost_nanos)
    headroom, tightest_index = min(headrooms)
    # An exhausted window refuses even a free request, as in standard mode.
    if headroom <= 0 or headroom < min_cost_nanos:
        return Refused(tightest_index, states[tightest_index])
    return Admitted(min(max_cost_nanos, headroom))
