"""The admission rule: who may place a hold and how large it is (ledgergate/domain/admission.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgergate.domain.admission import Admitted, BudgetMode, LineState, Refused, decide
from tests.domain.strategies import PROPERTY

amounts = st.integers(min_value=0, max_value=10_000)
limits_strategy = st.none() | st.integers(min_value=0, max_value=10_000)
lines = st.lists(st.tuples(st.builds(LineState, amounts, amounts), limits_strategy), max_size=6)
modes = st.sampled_from(list(BudgetMode))


def _headroom(state: LineState, limit: int) -> int:
    return limit - state.spent_nanos - state.held_nanos


@PROPERTY
@given(rows=lines, max_cost=amounts, min_cost=amounts)
def test_decide_standard_admits_iff_every_limited_line_under_limit(
    rows: list[tuple[LineState, int | None]], max_cost: int, min_cost: int
) -> None:
    """Standard mode: admitted iff spent + held < limit on every limited line; the hold is the full max cost."""
    states, limits = [s for s, _ in rows], [limit for _, limit in rows]
    decision = decide(states, limits, max_cost, min_cost, BudgetMode.STANDARD)
    under = all(limit is None or s.spent_nanos + s.held_nanos < limit for s, limit in rows)
    if under:
        assert decision == Admitted(max_cost)
        return
    assert isinstance(decision, Refused)
    refusing_state, refusing_limit = rows[decision.line_index]
    assert decision.state == refusing_state
    assert refusing_limit is not None
    assert refusing_state.spent_nanos + refusing_state.held_nanos >= refusing_limit
    # The first refusing line is reported, so the message is deterministic.
    assert all(limit is None or s.spent_nanos + s.held_nanos < limit for s, limit in rows[: decision.line_index])


@PROPERTY
@given(rows=lines, max_cost=amounts, min_cost=amounts)
def test_decide_strict_hold_fits_every_headroom(
    rows: list[tuple[LineState, int | None]], max_cost: int, min_cost: int
) -> None:
    """Strict mode: admitted iff the tightest headroom >= max(min_cost, 1); the hold then fits every line."""
    states, limits = [s for s, _ in rows], [limit for _, limit in rows]
    decision = decide(states, limits, max_cost, min_cost, BudgetMode.STRICT)
    headrooms = [_headroom(s, limit) for s, limit in rows if limit is not None]
    if not headrooms:
        assert decision == Admitted(max_cost)
        return
    tightest = min(headrooms)
    if tightest >= max(min_cost, 1):
        assert decision == Admitted(min(max_cost, tightest))
        assert all(decision.hold_nanos <= room for room in headrooms)
        return
    assert isinstance(decision, Refused)
    refusing_state, refusing_limit = rows[decision.line_index]
    assert decision.state == refusing_state
    assert refusing_limit is not None
    assert _headroom(refusing_state, refusing_limit) == tightest


@PROPERTY
@given(
    states=st.lists(st.builds(LineState, amounts, amounts), max_size=6),
    max_cost=amounts,
    min_cost=amounts,
    mode=modes,
)
def test_decide_unlimited_lines_never_refuse(
    states: list[LineState], max_cost: int, min_cost: int, mode: BudgetMode
) -> None:
    """Lines that are tracked but not limited (limit None) admit any spend at full max cost."""
    assert decide(states, [None] * len(states), max_cost, min_cost, mode) == Admitted(max_cost)


@PROPERTY
@given(rows=lines, max_cost=amounts, min_cost=amounts)
def test_decide_strict_admission_implies_standard_admission(
    rows: list[tuple[LineState, int | None]], max_cost: int, min_cost: int
) -> None:
    """Strict is never looser than standard: whatever strict admits, standard admits too."""
    states, limits = [s for s, _ in rows], [limit for _, limit in rows]
    if isinstance(decide(states, limits, max_cost, min_cost, BudgetMode.STRICT), Admitted):
        assert isinstance(decide(states, limits, max_cost, min_cost, BudgetMode.STANDARD), Admitted)


@pytest.mark.parametrize(
    ("mode", "state", "limit", "max_cost", "min_cost", "expected"),
    [
        (BudgetMode.STANDARD, LineState(99, 0), 100, 50, 1, Admitted(50)),  # may overshoot by one request
        (BudgetMode.STANDARD, LineState(60, 40), 100, 1, 1, Refused(0, LineState(60, 40))),  # holds count
        (BudgetMode.STANDARD, LineState(0, 0), 0, 0, 0, Refused(0, LineState(0, 0))),  # a zero budget refuses all
        (BudgetMode.STRICT, LineState(60, 10), 100, 50, 5, Admitted(30)),  # clamped to headroom
        (BudgetMode.STRICT, LineState(60, 10), 100, 20, 5, Admitted(20)),  # fits unclamped
        (BudgetMode.STRICT, LineState(60, 36), 100, 50, 5, Refused(0, LineState(60, 36))),  # below min cost
        (BudgetMode.STRICT, LineState(100, 0), 100, 0, 0, Refused(0, LineState(100, 0))),  # exhausted refuses free
    ],
)
def test_decide_known_cases(
    mode: BudgetMode, state: LineState, limit: int, max_cost: int, min_cost: int, expected: object
) -> None:
    """Hand-checked decisions at the boundaries of both modes."""
    assert decide([state], [limit], max_cost, min_cost, mode) == expected


def test_decide_strict_reports_tightest_line() -> None:
    """Strict mode names the window with the least headroom, not merely the first limited one."""
    states = [LineState(10, 0), LineState(0, 0), LineState(95, 4)]
    decision = decide(states, [100, None, 100], 10, 5, BudgetMode.STRICT)
    assert decision == Refused(2, LineState(95, 4))


def test_decide_rejects_mismatched_lines() -> None:
    """A state without a limit (or vice versa) is a programming error, not a silent admit."""
    with pytest.raises(ValueError):
        decide([LineState(0, 0)], [], 1, 1, BudgetMode.STANDARD)
