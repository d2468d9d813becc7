"""Money is an integer count of nano-USD (1e-9 USD); floats only ever appear at the JSON edge."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
MAX_NANOS = 2**63 - 1  # what a signed 64-bit counter (SQL BIGINT, Redis integer) can hold
_NANO = Decimal(1).scaleb(-9)
MAX_USD_TEXT = f"{MAX_NANOS // NANOS_PER_USD}.{MAX_NANOS % NANOS_PER_USD:09d}"  # 9223372036.854775807
# Enough digits for any amount in range plus its sub-nano digits; larger values are refused before rounding.
_EXACT = Context(prec=60)
_FLOAT_NOISE = Decimal("1e-15")  # relative: what lies past a float's 15 reliable significant digits


class MoneyError(ValueError):
    """A value that cannot be an amount of money (NaN, infinite, not a number)."""


def usd_to_nanos(amount_usd: float | int | str | Decimal) -> int:
    """Convert a USD amount from the outside world to nanos, rounding half-even to the nearest nano.

    Floats go through their shortest repr so that ``0.1`` means exactly 0.1 USD, not the binary neighbour.
    """
    if isinstance(amount_usd, bool):
        raise MoneyError("a boolean is not an amount of money")
    if isinstance(amount_usd, int):
        return amount_usd * NANOS_PER_USD
    if isinstance(amount_usd, float):
        if not math.isfinite(amount_usd):
            raise MoneyError("amount must be a finite number")
        value = Decimal(repr(amount_usd))
    else:
        try:
            value = Decimal(amount_usd)
        except InvalidOperation as exc:
            raise MoneyError(f"not a number: {amount_usd!r}") from exc
        if not value.is_finite():
            raise MoneyError("amount must be a finite number")
    try:
        return int((value / _NANO).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    except InvalidOperation as exc:
        raise MoneyError(f"amount out of range: {amount_usd!r}") from exc


def amount_nanos(amount_usd: object) -> int:
    """The one conversion of a USD amount a client sends (budgets, ``reset_to``) to nanos.

    A finite number (or numeric string) from 0 to ``MAX_USD_TEXT``, the range of the ledger's signed 64-bit
    nano-USD columns, rounded UP to the next nano: a positive amount never becomes 0 (``5e-10`` is 1 nano), and
    a budget is never tightened by rounding (a float's binary noise past its 15th significant digit is not a
    fraction of a nano). Anything else raises ``MoneyError`` stating the rule.
    """
    if isinstance(amount_usd, bool) or not isinstance(amount_usd, int | float | str | Decimal):
        raise MoneyError(f"must be a number of USD, got {amount_usd!r:.40}")
    try:
        value = Decimal(repr(amount_usd)) if isinstance(amount_usd, float) else Decimal(amount_usd)
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"must be a number of USD, got {amount_usd!r:.40}") from exc
    if not value.is_finite():
        raise MoneyError(f"must be a finite number of USD, got {amount_usd!r:.40}")
    if value < 0:
        raise MoneyError(f"must be >= 0, got {amount_usd!r:.40}")
    if value > Decimal(MAX_USD_TEXT):
        raise MoneyError(f"must be at most {MAX_USD_TEXT} USD (the ledger's nano-USD range), got {amount_usd!r:.40}")
    exact = _EXACT.divide(value, _NANO)
    nanos = int(exact.to_integral_value(rounding=ROUND_CEILING))
    if isinstance(amount_usd, float):
        # A float is good to 15 significant digits (DBL_DIG); a difference from a whole number of nanos below that
        # is binary noise, not a fraction of a nano: 3 * 1e-05 is 3.0000000000000004e-05, which rounding up would
        # make one nano more than the client meant.
        nearest = exact.to_integral_value(rounding=ROUND_HALF_EVEN)
        if abs(exact - nearest) <= exact * _FLOAT_NOISE:
            nanos = int(nearest)
    return max(nanos, 1) if value > 0 else 0  # an exponent below the context's range rounds the quotient to 0


def nanos_to_usd(amount_nanos: int) -> float:
    """The JSON view of an amount: a float USD number, for display only (never fed back into arithmetic)."""
    return amount_nanos / NANOS_PER_USD


def nanos_to_decimal(amount_nanos: int) -> Decimal:
    """Exact USD value, for messages that must not show float noise."""
    return Decimal(amount_nanos).scaleb(-9).normalize()


def format_usd(amount_nanos: int) -> str:
    """A human-readable USD string without float noise (``0.0031``, ``12``)."""
    text = format(nanos_to_decimal(amount_nanos), "f")
    return text
