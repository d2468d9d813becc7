"""The pure rules of rate limits: ``decide`` with units, hold and settle amounts, parsing, inheritance, lines
(ledgergate/domain/admission.py, ledgergate/domain/rate_limits.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    settle_amount,
)
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.rate_limits import (
    RateLimitField,
    RateLimits,
    parse_rate_limit,
    rate_lines,
    unit_of_window,
    with_tokens_used,
)
from ledgergate.domain.windows import FAR_FUTURE_S, PeriodClock
from tests.domain.strategies import PROPERTY

amounts = st.integers(min_value=0, max_value=50)
rows_strategy = st.lists(
    st.tuples(
        st.builds(LineState, amounts, amounts),
        st.none() | st.integers(min_value=0, max_value=60),
        st.sampled_from(list(CounterUnit)),
    ),
    max_size=6,
)


def _split(
    rows: list[tuple[LineState, int | None, CounterUnit]],
) -> tuple[list[LineState], list[int | None], list[CounterUnit]]:
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


@PROPERTY
@given(rows=rows_strategy, max_cost=amounts, min_cost=amounts)
def test_decide_standard_mode_treats_every_unit_alike(
    rows: list[tuple[LineState, int | None, CounterUnit]], max_cost: int, min_cost: int
) -> None:
    """Standard mode: every line, budget or rate, admits iff spent + held < limit; the first refusing line is
    reported. (For requests that is spent + held + 1 <= limit: exactly the limit is admitted.)"""
    states, limits, units = _split(rows)
    with_units = decide(states, limits, max_cost, min_cost, BudgetMode.STANDARD, units)
    assert with_units == decide(states, limits, max_cost, min_cost, BudgetMode.STANDARD)


@PROPERTY
@given(rows=rows_strategy, max_cost=amounts, min_cost=amounts)
def test_decide_strict_mode_checks_budgets_then_rates(
    rows: list[tuple[LineState, int | None, CounterUnit]], max_cost: int, min_cost: int
) -> None:
    """Strict mode: the cost lines decide (and clamp the hold) exactly as without rate lines; if they admit, the
    first rate line with spent + held >= limit refuses; rate lines never clamp the cost hold."""
    states, limits, units = _split(rows)
    decision = decide(states, limits, max_cost, min_cost, BudgetMode.STRICT, units)
    cost_indexes = [i for i, unit in enumerate(units) if unit is CounterUnit.COST_NANOS]
    cost_only = decide(
        [states[i] for i in cost_indexes], [limits[i] for i in cost_indexes], max_cost, min_cost, BudgetMode.STRICT
    )
    if isinstance(cost_only, Refused):
        assert decision == Refused(cost_indexes[cost_only.line_index], cost_only.state)
        return
    full_rates = [
        i
        for i, (state, limit, unit) in enumerate(rows)
        if unit is not CounterUnit.COST_NANOS and limit is not None and state.spent_nanos + state.held_nanos >= limit
    ]
    if full_rates:
        assert decision == Refused(full_rates[0], states[full_rates[0]])
    else:
        assert decision == cost_only


def _line(unit: CounterUnit, amount: int) -> CounterLine:
    return CounterLine(CounterKey("key", "k", "x", 0), 10, 60, unit, amount)


def test_hold_and_settle_amounts_per_unit() -> None:
    """Cost lines hold the decided cost and settle the actual cost; requests hold and settle 1; tokens hold the
    bound and settle the tokens used; requests in flight hold 1 and leave nothing behind."""
    admitted = Admitted(700)
    cases = [
        (CounterUnit.COST_NANOS, 0, 700, 650),
        (CounterUnit.REQUESTS, 1, 1, 1),
        (CounterUnit.TOKENS, 300, 300, 120),
        (CounterUnit.PARALLEL, 1, 1, 0),
    ]
    for unit, amount, held, settled in cases:
        line = _line(unit, amount)
        assert hold_amount(line, admitted) == held
        assert settle_amount(with_tokens_used(line, 120), 650) == settled


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True, 10**15 + 1, [1]])
def test_parse_rate_limit_rejects_all_but_positive_integers(value: object) -> None:
    """Rate limits are positive integers (at most 1e15); a bool, a fraction or a string is a 400."""
    with pytest.raises(InvalidInput) as raised:
        parse_rate_limit(value, "rpm_limit")
    assert raised.value.field == "rpm_limit"


def test_parse_rate_limit_accepts_whole_numbers() -> None:
    """``60`` and ``60.0`` (some clients send JSON numbers as floats) are 60; null is no limit."""
    assert parse_rate_limit(60, "rpm_limit") == parse_rate_limit(60.0, "rpm_limit") == 60
    assert parse_rate_limit(None, "rpm_limit") is None


def test_rate_limits_own_win_over_the_budget_objects_field_by_field() -> None:
    """Each limit an entity sets wins; those it does not set come from its budget object; junk is ignored."""
    own = RateLimits.of({"rpm_limit": 5, "tpm_limit": "junk", "max_parallel_requests": True})
    inherited = RateLimits.of({"rpm_limit": 50, "tpm_limit": 500})
    assert dict(own.over(inherited).limits) == {RateLimitField.RPM: 5, RateLimitField.TPM: 500}


def test_rate_lines_use_their_own_windows_and_periods() -> None:
    """rpm and tpm count per UTC minute under window names no budget window can take; requests in flight are
    one period-less counter; a tokens line holds the request's bound."""
    limits = RateLimits.of({"rpm_limit": 5, "tpm_limit": 500, "max_parallel_requests": 2})
    lines = rate_lines(EntityRef(EntityType.TEAM, "t"), limits, PeriodClock(ZoneInfo("Asia/Kolkata")), 125.5, 77)
    keys = [(rate.field, rate.line.key, rate.line.period_end_s, rate.line.amount) for rate in lines]
    assert keys == [
        (RateLimitField.RPM, CounterKey("team", "t", "rpm", 120), 180, 1),
        (RateLimitField.TPM, CounterKey("team", "t", "tpm", 120), 180, 77),
        (RateLimitField.PARALLEL, CounterKey("team", "t", "parallel", 0), FAR_FUTURE_S, 1),
    ]
    assert [unit_of_window(key.window) for _, key, _, _ in keys] == [
        CounterUnit.REQUESTS,
        CounterUnit.TOKENS,
        CounterUnit.PARALLEL,
    ]
    assert unit_of_window("1m") is unit_of_window("lifetime") is CounterUnit.COST_NANOS
