"""period_of: every instant lies in exactly one aligned period (ledgergate/domain/durations.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given

from ledgergate.domain.durations import ANCHOR_DATE, DurationError, parse_duration, period_of
from tests.domain.strategies import PROPERTY, WHOLE_HOUR_SHIFT_ZONES, duration_texts, instants, zone_names

FIXED_SECONDS = {"s": 1, "m": 60, "h": 3600}
ONE_MICROSECOND = timedelta(microseconds=1)


def _local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


@PROPERTY
@given(instant=instants, text=duration_texts, zone_name=zone_names)
def test_period_of_contains_instant(instant: datetime, text: str, zone_name: str) -> None:
    """start <= instant < end, both UTC-aware: a charge always falls in the period it is counted in."""
    start, end = period_of(instant, parse_duration(text), ZoneInfo(zone_name))
    assert start <= instant < end
    assert start.utcoffset() == timedelta(0)
    assert end.utcoffset() == timedelta(0)


@PROPERTY
@given(instant=instants, text=duration_texts, zone_name=zone_names)
def test_period_of_is_stable_and_consecutive(instant: datetime, text: str, zone_name: str) -> None:
    """Every instant of a period maps to that period, and the next period starts exactly at its end (no gaps)."""
    duration, tz = parse_duration(text), ZoneInfo(zone_name)
    start, end = period_of(instant, duration, tz)
    assert period_of(start, duration, tz) == (start, end)
    assert period_of(end - ONE_MICROSECOND, duration, tz) == (start, end)
    next_start, next_end = period_of(end, duration, tz)
    assert next_start == end
    assert next_end > end
    assert period_of(start - ONE_MICROSECOND, duration, tz)[1] == start


@PROPERTY
@given(instant=instants, text=duration_texts, zone_name=zone_names)
def test_period_of_aligns_to_local_calendar(instant: datetime, text: str, zone_name: str) -> None:
    """Boundaries fall where the spec puts them in the configured zone: midnights, Mondays, 1sts, the anchor."""
    duration, tz = parse_duration(text), ZoneInfo(zone_name)
    start, end = period_of(instant, duration, tz)
    local_start = start.astimezone(tz)
    if duration.unit in FIXED_SECONDS:
        length_s = duration.count * FIXED_SECONDS[duration.unit]
        day_start = _local_midnight_utc(local_start.date(), tz)
        next_day_start = _local_midnight_utc(local_start.date() + timedelta(days=1), tz)
        # Counted from local midnight; the last period of a short (DST) day is cut at the next midnight.
        assert (start - day_start).total_seconds() % length_s == 0
        assert end == min(start + timedelta(seconds=length_s), next_day_start)
        if zone_name in WHOLE_HOUR_SHIFT_ZONES:
            local_seconds = local_start.minute * 60 + local_start.second
            assert local_start.microsecond == 0
            assert local_seconds % min(length_s, 3600) == 0
        return
    local_end = end.astimezone(tz)
    for boundary in (local_start, local_end):
        assert (boundary.hour, boundary.minute, boundary.second, boundary.microsecond) == (0, 0, 0, 0)
    if duration.unit in ("d", "w"):
        length_days = duration.count * (7 if duration.unit == "w" else 1)
        assert (local_end.date() - local_start.date()).days == length_days
        assert (local_start.date() - ANCHOR_DATE).days % length_days == 0
        if duration.unit == "w":
            assert local_start.weekday() == 0
        return
    assert local_start.day == local_end.day == 1
    month_index = (local_start.year - 2000) * 12 + local_start.month - 1
    end_index = (local_end.year - 2000) * 12 + local_end.month - 1
    assert month_index % duration.count == 0
    assert end_index - month_index == duration.count


@pytest.mark.parametrize(
    ("text", "instant", "zone_name", "expected_start", "expected_end"),
    [
        ("1h", datetime(2024, 3, 5, 10, 59, 59), "UTC", datetime(2024, 3, 5, 10), datetime(2024, 3, 5, 11)),
        ("15m", datetime(2024, 3, 5, 10, 44), "UTC", datetime(2024, 3, 5, 10, 30), datetime(2024, 3, 5, 10, 45)),
        ("1d", datetime(2024, 3, 5, 23, 30), "Europe/Berlin", datetime(2024, 3, 5, 23), datetime(2024, 3, 6, 23)),
        ("1w", datetime(2024, 3, 7), "UTC", datetime(2024, 3, 4), datetime(2024, 3, 11)),
        ("1mo", datetime(2024, 2, 29, 12), "UTC", datetime(2024, 2, 1), datetime(2024, 3, 1)),
        ("3mo", datetime(2024, 5, 20), "UTC", datetime(2024, 4, 1), datetime(2024, 7, 1)),
        (
            "3mo",
            datetime(2024, 12, 31, 23),
            "Asia/Kolkata",
            datetime(2024, 12, 31, 18, 30),
            datetime(2025, 3, 31, 18, 30),
        ),
        ("2d", datetime(2000, 1, 4, 12), "UTC", datetime(2000, 1, 3), datetime(2000, 1, 5)),
        ("2d", datetime(2000, 1, 2, 12), "UTC", datetime(2000, 1, 1), datetime(2000, 1, 3)),
        ("2w", datetime(2000, 1, 17), "UTC", datetime(2000, 1, 17), datetime(2000, 1, 31)),
        # 25-hour day: the hour after 02:00 CEST repeats, the day still starts and ends at local midnight.
        ("1d", datetime(2024, 10, 27, 12), "Europe/Berlin", datetime(2024, 10, 26, 22), datetime(2024, 10, 27, 23)),
        # 23-hour day: 12h counts elapsed time from midnight, so the second period starts at 13:00 CEST and is cut
        # to 11 hours at the next midnight.
        ("12h", datetime(2024, 3, 31, 15), "Europe/Berlin", datetime(2024, 3, 31, 11), datetime(2024, 3, 31, 22)),
    ],
)
def test_period_of_matches_known_periods(
    text: str,
    instant: datetime,
    zone_name: str,
    expected_start: datetime,
    expected_end: datetime,
) -> None:
    """Hand-checked periods (all times UTC): top of hour, quarters, Berlin midnight, Monday weeks, the anchor."""
    got = period_of(instant.replace(tzinfo=UTC), parse_duration(text), ZoneInfo(zone_name))
    assert got == (expected_start.replace(tzinfo=UTC), expected_end.replace(tzinfo=UTC))


def test_period_of_rejects_naive_instant() -> None:
    """A naive datetime has no instant; guessing a zone would put charges in the wrong period."""
    with pytest.raises(ValueError, match="timezone-aware"):
        period_of(datetime(2024, 1, 1), parse_duration("1d"), ZoneInfo("UTC"))


@pytest.mark.parametrize("text", ["999999w", "999999mo"])
def test_period_of_handles_every_parsed_duration(text: str) -> None:
    """Whatever the grammar accepts has a computable period; otherwise it must be a DurationError (a 400)."""
    try:
        duration = parse_duration(text)
    except DurationError:
        return
    period_of(datetime(2024, 1, 1, tzinfo=UTC), duration, ZoneInfo("UTC"))
