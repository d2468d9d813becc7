"""Money at the JSON edge: USD in, exact integer nanos inside (ledgergate/domain/money.py)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgergate.domain.money import MoneyError, format_usd, nanos_to_decimal, nanos_to_usd, usd_to_nanos
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
