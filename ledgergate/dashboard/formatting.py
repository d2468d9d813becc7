"""How money and time read on the dashboard. Amounts stay integer nanos until the last step, here."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from ledgergate.domain.money import format_usd, nanos_to_decimal
from ledgergate.domain.windows import FAR_FUTURE_S

_CENT = Decimal("0.01")
_SIGNIFICANT = 4


def usd_text(amount_nanos: int | None) -> str:
    """``$1,234.50`` for a dollar or more; smaller amounts keep four significant digits (``$0.0031``, not
    ``$0.00``) because budgets of fractions of a cent are common. Pages show the exact amount in a tooltip."""
    if amount_nanos is None:
        return "no limit"
    sign = "-" if amount_nanos < 0 else ""
    value = nanos_to_decimal(abs(amount_nanos))
    if value >= 1:
        return f"{sign}${value.quantize(_CENT, rounding=ROUND_HALF_EVEN):,}"
    if value:
        step = Decimal(1).scaleb(value.adjusted() - _SIGNIFICANT + 1)
        value = value.quantize(step, rounding=ROUND_HALF_EVEN).normalize()
    text = format(value, "f")
    if "." not in text:
        text += ".00"
    elif len(text.split(".")[1]) < 2:
        text += "0"
    return f"{sign}${text}"


def usd_exact(amount_nanos: int | None) -> str:
    """The exact amount (``0.000000001``), for tooltips and form values."""
    return "" if amount_nanos is None else format_usd(amount_nanos)


def iso_utc(epoch_s: float | None) -> str:
    if epoch_s is None or epoch_s >= FAR_FUTURE_S:
        return ""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    if days < 60:
        return f"{days} d {hours} h" if hours and days < 3 else f"{days} d"
    return f"{days // 30} months"


def relative_time(epoch_s: float | None, now_s: float) -> str:
    """``in 42 min`` / ``3 h ago``; empty for no time or a lifetime window's far-future end."""
    if epoch_s is None or epoch_s >= FAR_FUTURE_S:
        return ""
    delta = epoch_s - now_s
    if abs(delta) < 1:
        return "now"
    return f"in {_span(delta)}" if delta > 0 else f"{_span(-delta)} ago"


def percent(part_nanos: int, whole_nanos: int | None) -> float:
    """Share of a limit in percent (may exceed 100: standard mode lets one request overshoot)."""
    if not whole_nanos:
        return 100.0 if whole_nanos == 0 and part_nanos > 0 else 0.0
    return part_nanos * 100 / whole_nanos
