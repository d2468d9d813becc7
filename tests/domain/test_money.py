"""Money at the JSON edge: USD in, exact integer nanos inside (ledgergate/domain/money.py)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgergate.domain.money import (
    MoneyError,
    amount_nanos,
    format_usd,
    nanos_to_decimal,
    nanos_to_usd,
    usd_to_nanos,
)
from tests.domain.strategies import PROPERTY


@pytest.mark.parametrize(
    ("amount", "nanos"),
    [
        (0.1, 100_000_000),
        (0.3, 300_000_000),
        (0.1 + 0.2, 300_000_000),  # 0.30000000000000004 rounds to the nearest nano
        (1, 1_000_000_000),
        (0, 0),
        ("0.0031", 3_100_000),
        (Decimal("12.000000001"), 12_000_000_001),
        (1e-9, 1),
        (2.5e-9, 2),  # half-even: ties go to the even nano
        (3.5e-9, 4),
        ("0.0000000005", 0),
        ("0.0000000015", 2),
        ("-0.0000000025", -2),
        (123456.789, 123_456_789_000_000),
    ],
)
def test_usd_to_nanos_is_exact_and_rounds_half_even(amount: float | int | str | Decimal, nanos: int) -> None:
    """0.1 USD is exactly 100_000_000 nanos (no binary float noise); sub-nano ties round half to even."""
    assert usd_to_nanos(amount) == nanos


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "NaN", "inf", "abc", "", True, False])
def test_usd_to_nanos_rejects_non_amounts(bad: object) -> None:
    """NaN, infinities, booleans and non-numeric text are never money."""
    with pytest.raises(MoneyError):
        usd_to_nanos(bad)  # type: ignore[arg-type]


@PROPERTY
@given(nanos=st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1))
def test_usd_to_nanos_round_trips_float_written_amounts(nanos: int) -> None:
    """Any amount with at most 15 significant digits sent as a JSON float converts to exactly its nanos."""
    as_text = str(nanos_to_decimal(nanos))
    assert usd_to_nanos(float(as_text)) == nanos
    assert usd_to_nanos(as_text) == nanos
    assert usd_to_nanos(nanos_to_usd(nanos)) == nanos


@PROPERTY
@given(nanos=st.integers(min_value=-(10**18), max_value=10**18))
def test_format_usd_is_exact_and_noise_free(nanos: int) -> None:
    """The message form of an amount parses back to the same nanos and never shows float noise."""
    text = format_usd(nanos)
    assert usd_to_nanos(text) == nanos
    assert "e" not in text.lower()


@PROPERTY
@given(numerator=st.integers(min_value=-(10**12), max_value=10**12))
def test_usd_to_nanos_rounds_tenth_nanos_half_even(numerator: int) -> None:
    """An amount with ten decimals rounds to the nearest nano, ties to even, like Python's round()."""
    text = str(Decimal(numerator).scaleb(-10))
    assert usd_to_nanos(text) == round(Decimal(numerator) / 10)


@pytest.mark.parametrize(("nanos", "text"), [(3_100_000, "0.0031"), (12 * 10**9, "12"), (0, "0"), (1, "0.000000001")])
def test_format_usd_shows_plain_decimal(nanos: int, text: str) -> None:
    """Budget-exceeded messages show amounts the way a human writes them."""
    assert format_usd(nanos) == text


@PROPERTY
@given(nanos=st.integers(min_value=0, max_value=10**15 - 1))
def test_amount_nanos_keeps_float_written_amounts_exact(nanos: int) -> None:
    """Rounding up never adds a nano to an amount a client wrote exactly (float noise is not a fraction of a nano)."""
    as_text = str(nanos_to_decimal(nanos))
    assert amount_nanos(float(as_text)) == nanos
    assert amount_nanos(as_text) == nanos


@PROPERTY
@given(numerator=st.integers(min_value=1, max_value=10**12))
def test_amount_nanos_rounds_fractions_of_a_nano_up(numerator: int) -> None:
    """A budget is never tightened by rounding: a fraction of a nano rounds up (SPEC 2)."""
    text = str(Decimal(numerator).scaleb(-10))
    assert amount_nanos(text) == math.ceil(Decimal(numerator) / 10)


@pytest.mark.parametrize(
    ("amount", "nanos"), [(5e-10, 1), (1e-300, 1), ("1e-99999", 1), (1.5e-9, 2), (3 * 1e-5, 30_000)]
)
def test_amount_nanos_sub_resolution_bug_5e_10_becomes_one_nano_not_zero(amount: object, nanos: int) -> None:
    """Regression (issue 12): ``max_budget: 5e-10`` was rounded to 0, a positive budget refusing everything."""
    assert amount_nanos(amount) == nanos


@pytest.mark.parametrize("amount", [1e20, 1e308, 10**30, "9223372036.854775808", math.inf, math.nan, -1e-12, True, "x"])
def test_amount_nanos_refuses_what_the_ledger_cannot_hold(amount: object) -> None:
    """Out of the signed 64-bit nano-USD range, not finite, negative or not a number: MoneyError with the rule."""
    with pytest.raises(MoneyError, match=r"USD|>= 0"):
        amount_nanos(amount)
    assert amount_nanos("9223372036.854775807") == 2**63 - 1
