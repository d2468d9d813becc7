"""Duration grammar, canonical forms and key-expiry arithmetic (ledgergate/domain/durations.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgergate.domain.durations import GRAMMAR, Duration, DurationError, add_duration, parse_duration, period_of
from tests.domain.strategies import PROPERTY, duration_texts, instants


@pytest.mark.parametrize(
    ("text", "count", "unit", "resolved"),
    [
        ("30s", 30, "s", "30s"),
        ("1s", 1, "s", "1s"),
        ("15m", 15, "m", "15m"),
        ("60m", 60, "m", "60m"),
        ("1h", 1, "h", "1h"),
        ("24h", 1, "d", "24h"),
        ("1d", 1, "d", "1d"),
        ("45d", 45, "d", "45d"),
        ("2w", 2, "w", "2w"),
        ("1mo", 1, "mo", "1mo"),
        ("3mo", 3, "mo", "3mo"),
        ("36600d", 36600, "d", "36600d"),
        ("hourly", 1, "h", "1h"),
        ("daily", 1, "d", "1d"),
        ("weekly", 1, "w", "1w"),
        ("monthly", 1, "mo", "1mo"),
        (" Daily ", 1, "d", "1d"),
        ("1H", 1, "h", "1h"),
    ],
)
def test_parse_duration_accepts_grammar_and_aliases(text: str, count: int, unit: str, resolved: str) -> None:
    """Every documented form and alias parses; aliases resolve to the numeric form they name."""
    assert parse_duration(text) == Duration(count=count, unit=unit, text=resolved)


@pytest.mark.parametrize(
    "text",
    ["0h", "-1d", "1x", "1hr", "1.5h", "", " ", "h", "1", "01h", "1 h", "0mo", "1000000d", "1y", "1dd", "+1d"],
)
def test_parse_duration_rejects_malformed_text_showing_grammar(text: str) -> None:
    """Anything outside the grammar is refused with a message that teaches the grammar (a 400, never a 500)."""
    with pytest.raises(DurationError) as excinfo:
        parse_duration(text)
    assert GRAMMAR in str(excinfo.value)
    assert repr(text) in str(excinfo.value)


@pytest.mark.parametrize("value", [None, 1, 1.0, True, ["1h"], {"budget_duration": "1h"}, b"1h"])
def test_parse_duration_rejects_non_strings_showing_grammar(value: object) -> None:
    """A JSON number, list or null is not a duration, even when it looks like one."""
    with pytest.raises(DurationError) as excinfo:
        parse_duration(value)
    assert GRAMMAR in str(excinfo.value)


@pytest.mark.parametrize(
    ("text", "divisors"),
    [
        ("7m", "1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60"),
        ("7s", "1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60"),
        ("5h", "1, 2, 3, 4, 6, 8, 12, 24"),
        ("48h", "1, 2, 3, 4, 6, 8, 12, 24"),
        ("90m", "1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60"),
    ],
)
def test_parse_duration_rejects_fixed_unit_not_dividing_cycle(text: str, divisors: str) -> None:
    """s/m/h periods count from midnight, so N must tile the unit's cycle; the message lists the valid N."""
    with pytest.raises(DurationError) as excinfo:
        parse_duration(text)
    assert divisors in str(excinfo.value)


@pytest.mark.parametrize(
    ("left", "right"),
    [("24h", "1d"), ("7d", "1w"), ("60m", "1h"), ("14d", "2w"), ("daily", "1d"), ("hourly", "60m"), ("21d", "3w")],
)
def test_duration_canonical_equates_identical_periods(left: str, right: str) -> None:
    """Two spellings of one period share a canonical form, so they count as duplicate windows."""
    assert parse_duration(left).canonical == parse_duration(right).canonical


@pytest.mark.parametrize(
    ("left", "right"), [("1mo", "30d"), ("1mo", "4w"), ("12h", "1d"), ("2d", "1d"), ("30s", "30m"), ("12mo", "52w")]
)
def test_duration_canonical_distinguishes_different_periods(left: str, right: str) -> None:
    """Durations whose periods differ (a month is not 30 days) keep distinct canonical forms."""
    assert parse_duration(left).canonical != parse_duration(right).canonical


@PROPERTY
@given(left=duration_texts, right=duration_texts, instant=instants)
def test_duration_canonical_equal_implies_equal_periods_in_utc(left: str, right: str, instant: datetime) -> None:
    """Equal canonical forms (the duplicate-window rule and the counter key) mean identical periods."""
    a, b = parse_duration(left), parse_duration(right)
    if a.canonical == b.canonical:
        assert period_of(instant, a, ZoneInfo("UTC")) == period_of(instant, b, ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("zone_name", "instant"),
    [
        ("Europe/Berlin", datetime(2024, 10, 27, 22, 30, tzinfo=UTC)),
        ("America/New_York", datetime(2024, 11, 4, 4, 30, tzinfo=UTC)),
    ],
)
def test_duration_24h_and_1d_share_periods_on_dst_days(zone_name: str, instant: datetime) -> None:
    """24h and 1d share a canonical key, so their periods must agree even on a 25-hour DST day."""
    tz = ZoneInfo(zone_name)
    assert period_of(instant, parse_duration("24h"), tz) == period_of(instant, parse_duration("1d"), tz)


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        (datetime(2024, 1, 31, 12, tzinfo=UTC), "1mo", datetime(2024, 2, 29, 12, tzinfo=UTC)),
        (datetime(2023, 1, 31, 12, tzinfo=UTC), "1mo", datetime(2023, 2, 28, 12, tzinfo=UTC)),
        (datetime(2024, 12, 15, tzinfo=UTC), "1mo", datetime(2025, 1, 15, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), "12mo", datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2024, 5, 31, tzinfo=UTC), "monthly", datetime(2024, 6, 30, tzinfo=UTC)),
        (datetime(2024, 1, 1, tzinfo=UTC), "30s", datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)),
        (datetime(2024, 1, 1, 23, tzinfo=UTC), "2h", datetime(2024, 1, 2, 1, tzinfo=UTC)),
        (datetime(2024, 2, 28, tzinfo=UTC), "2d", datetime(2024, 3, 1, tzinfo=UTC)),
        (datetime(2024, 1, 1, tzinfo=UTC), "2w", datetime(2024, 1, 15, tzinfo=UTC)),
    ],
)
def test_add_duration_moves_forward_by_one_duration(start: datetime, text: str, expected: datetime) -> None:
    """Key expiry: fixed units add their length, months are calendar months with the day clamped."""
    assert add_duration(start, parse_duration(text)) == expected


@PROPERTY
@given(instant=instants, text=duration_texts)
def test_add_duration_is_strictly_later_and_exact(instant: datetime, text: str) -> None:
    """An expiry is always after its start: fixed units by exactly their length, months by calendar months."""
    duration = parse_duration(text)
    moved = add_duration(instant, duration)
    assert moved > instant
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
    if duration.unit in seconds:
        assert moved - instant == timedelta(seconds=duration.count * seconds[duration.unit])
    else:
        months = (moved.year - instant.year) * 12 + moved.month - instant.month
        assert months == duration.count
        assert moved.day <= instant.day
        assert moved.time() == instant.time()


@PROPERTY
@given(text=st.text(max_size=8))
def test_parse_duration_never_raises_other_than_duration_error(text: str) -> None:
    """Arbitrary admin input is either a Duration or a DurationError (a 400), never another exception (a 500)."""
    try:
        duration = parse_duration(text)
    except DurationError:
        return
    assert duration.count >= 1
    assert duration.unit in {"s", "m", "h", "d", "w", "mo"}
