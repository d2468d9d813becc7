"""Budget durations: the grammar, and the one function that says which period an instant falls in.

Resets are implicit: a window's spend is what was charged inside the period that contains *now*, so no job
has to run for a budget to reset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

GRAMMAR = (
    "expected <positive integer><unit> with unit s, m, h, d, w or mo (e.g. 30s, 15m, 1h, 1d, 2w, 1mo), "
    "or one of hourly, daily, weekly, monthly"
)
ALIASES = {"hourly": "1h", "daily": "1d", "weekly": "1w", "monthly": "1mo"}
FIXED_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
# s, m and h periods count from midnight, so N must divide the unit's cycle to tile a day evenly.
FIXED_UNIT_CYCLE = {"s": 60, "m": 60, "h": 24}
# Multi-day, multi-week and multi-month periods count from a fixed Monday so every node agrees.
ANCHOR_DATE = date(2000, 1, 3)
ANCHOR_YEAR = 2000
MAX_PERIOD_DAYS = 36_600
MAX_PERIOD_MONTHS = 1_200
_PATTERN = re.compile(r"([1-9][0-9]{0,5})(s|m|h|d|w|mo)")


class DurationError(ValueError):
    """A budget_duration that does not match the grammar."""


@dataclass(frozen=True, slots=True)
class Duration:
    count: int
    unit: str  # one of s m h d w mo
    text: str  # as written by the admin, aliases resolved ("daily" -> "1d")
    # Equal for durations with identical periods (``24h`` and ``1d``, ``7d`` and ``1w``, ``60m`` and ``1h``);
    # computed once, as every admission names it.
    canonical: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "canonical", self._canonical())

    def _canonical(self) -> str:
        if self.unit in FIXED_UNIT_SECONDS:
            seconds = self.count * FIXED_UNIT_SECONDS[self.unit]
            if seconds == 86_400:
                return "1d"
            if seconds % 3600 == 0:
                return f"{seconds // 3600}h"
            if seconds % 60 == 0:
                return f"{seconds // 60}m"
            return f"{seconds}s"
        if self.unit == "d":
            if self.count % 7 == 0:
                return f"{self.count // 7}w"
            return f"{self.count}d"
        return f"{self.count}{self.unit}"

    def __str__(self) -> str:
        return self.text


def parse_duration(text: object) -> Duration:
    """Parse ``text`` against the grammar; raise ``DurationError`` with the grammar otherwise."""
    if not isinstance(text, str):
        raise DurationError(f"{text!r} is not a duration: {GRAMMAR}")
    normalized = text.strip().lower()
    resolved = ALIASES.get(normalized, normalized)
    match = _PATTERN.fullmatch(resolved)
    if match is None:
        raise DurationError(f"{text!r} is not a duration: {GRAMMAR}")
    count, unit = int(match.group(1)), match.group(2)
    cycle = FIXED_UNIT_CYCLE.get(unit)
    if cycle is not None and cycle % count != 0:
        divisors = ", ".join(str(d) for d in range(1, cycle + 1) if cycle % d == 0)
        raise DurationError(f"{text!r}: periods count from midnight, so {unit} must divide {cycle} ({divisors})")
    if unit == "h" and count == 24:
        # On a 25-hour DST day "24h" from midnight would leave a one-hour stub; it means the local day.
        count, unit = 1, "d"
    days = count * {"d": 1, "w": 7}.get(unit, 0)
    if days > MAX_PERIOD_DAYS or (unit == "mo" and count > MAX_PERIOD_MONTHS):
        raise DurationError(f"{text!r}: a period may last at most 100 years")
    return Duration(count=count, unit=unit, text=resolved)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def _month_start(month_index: int, tz: ZoneInfo) -> datetime:
    year, month0 = divmod(month_index, 12)
    return datetime(ANCHOR_YEAR + year, month0 + 1, 1, tzinfo=tz).astimezone(UTC)


def period_of(instant: datetime, duration: Duration, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The period ``[start, end)`` of ``duration`` containing ``instant`` (UTC-aware results).

    Calendar boundaries (midnight, Monday, the 1st) fall in ``tz``; every instant lies in exactly one period
    and each period's end is the next period's start.
    """
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    local_day = instant.astimezone(tz).date()
    unit, count = duration.unit, duration.count
    if unit in FIXED_UNIT_SECONDS:
        day_start = _local_midnight(local_day, tz)
        next_day_start = _local_midnight(local_day + timedelta(days=1), tz)
        length_s = count * FIXED_UNIT_SECONDS[unit]
        elapsed_s = int((instant - day_start).total_seconds())
        start = day_start + timedelta(seconds=elapsed_s - elapsed_s % length_s)
        return start, min(start + timedelta(seconds=length_s), next_day_start)
    if unit in ("d", "w"):
        length_days = count * (7 if unit == "w" else 1)
        offset_days = (local_day - ANCHOR_DATE).days
        start_day = ANCHOR_DATE + timedelta(days=offset_days - offset_days % length_days)
        return _local_midnight(start_day, tz), _local_midnight(start_day + timedelta(days=length_days), tz)
    local = instant.astimezone(tz)
    month_index = (local.year - ANCHOR_YEAR) * 12 + (local.month - 1)
    start_index = month_index - month_index % count
    return _month_start(start_index, tz), _month_start(start_index + count, tz)


def add_duration(instant: datetime, duration: Duration) -> datetime:
    """``instant`` moved forward by one ``duration`` (calendar months for ``mo``, day clamped): key expiry."""
    if duration.unit in FIXED_UNIT_SECONDS:
        return instant + timedelta(seconds=duration.count * FIXED_UNIT_SECONDS[duration.unit])
    if duration.unit in ("d", "w"):
        return instant + timedelta(days=duration.count * (7 if duration.unit == "w" else 1))
    month_index = instant.year * 12 + instant.month - 1 + duration.count
    year, month0 = divmod(month_index, 12)
    day = instant.day
    while True:
        try:
            return instant.replace(year=year, month=month0 + 1, day=day)
        except ValueError:
            day -= 1
