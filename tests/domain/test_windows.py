"""Budget windows: parsing an entity's windows, naming one, and the cached period clock (domain/windows.py)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgergate.domain.durations import GRAMMAR, parse_duration, period_of
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.windows import (
    FAR_FUTURE_S,
    LIFETIME,
    LIFETIME_PERIOD_START_S,
    UNLIMITED_LIFETIME,
    PeriodClock,
    Window,
    find_window,
    parse_max_budget,
    parse_windows,
)
from tests.domain.strategies import PROPERTY, duration_texts, instants, zone_names

NANOS = 1_000_000_000


def test_parse_windows_builds_primary_and_limits() -> None:
    """max_budget + budget_duration is the primary window; budget_limits add concurrent windows in order."""
    primary, limits = parse_windows(
        max_budget=10,
        budget_duration="daily",
        budget_limits=[{"budget_duration": "1h", "max_budget": 0.5}, {"budget_duration": "1mo", "max_budget": "100"}],
    )
    assert primary == Window(parse_duration("1d"), 10 * NANOS)
    assert limits == (Window(parse_duration("1h"), NANOS // 2), Window(parse_duration("1mo"), 100 * NANOS))


def test_parse_windows_max_budget_alone_is_lifetime_window() -> None:
    """max_budget without a duration limits lifetime spend and keys as 'lifetime'."""
    primary, limits = parse_windows(max_budget=0.1)
    assert primary == Window(None, 100_000_000)
    assert primary.key == LIFETIME
    assert primary.label == LIFETIME
    assert limits == ()


def test_parse_windows_nothing_means_no_windows() -> None:
    """An entity without budget fields has no limits at all."""
    assert parse_windows() == (None, ())


def test_parse_windows_accepts_budget_limits_as_json_string() -> None:
    """Some clients send budget_limits JSON-encoded; it parses exactly like the list."""
    as_list = [{"budget_duration": "1h", "max_budget": 1}, {"budget_duration": "1w", "max_budget": 5}]
    assert parse_windows(budget_limits=json.dumps(as_list)) == parse_windows(budget_limits=as_list)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (
            {"max_budget": 1, "budget_duration": "1d", "budget_limits": [{"budget_duration": "24h", "max_budget": 2}]},
            "budget_limits",
        ),
        (
            {"budget_limits": [{"budget_duration": "1w", "max_budget": 1}, {"budget_duration": "7d", "max_budget": 2}]},
            "budget_limits",
        ),
        (
            {
                "budget_limits": [
                    {"budget_duration": "hourly", "max_budget": 1},
                    {"budget_duration": "60m", "max_budget": 2},
                ]
            },
            "budget_limits",
        ),
        (
            {
                "max_budget": 1,
                "budget_duration": "1d",
                "budget_limits": '[{"budget_duration": "daily", "max_budget": 2}]',
                "prefix": "team.",
            },
            "team.budget_limits",
        ),
    ],
)
def test_parse_windows_rejects_duplicate_periods(kwargs: dict[str, object], field: str) -> None:
    """Two windows over the same periods (24h and 1d) could never differ, so they are a 400, not a silent merge."""
    with pytest.raises(InvalidInput) as excinfo:
        parse_windows(**kwargs)  # type: ignore[arg-type]
    assert excinfo.value.field == field
    assert "duplicate" in excinfo.value.message


def test_parse_windows_allows_distinct_periods() -> None:
    """A lifetime cap, a day, a month and 30 days are four different windows."""
    primary, limits = parse_windows(
        max_budget=100,
        budget_limits=[
            {"budget_duration": "1d", "max_budget": 1},
            {"budget_duration": "1mo", "max_budget": 10},
            {"budget_duration": "30d", "max_budget": 10},
        ],
    )
    assert primary is not None
    assert [w.key for w in (primary, *limits)] == [LIFETIME, "1d", "1mo", "30d"]


@pytest.mark.parametrize("bad", [-1, -0.01, math.nan, math.inf, -math.inf, True, False, "NaN", "inf", "abc", [], {}])
def test_parse_windows_rejects_bad_max_budget_naming_field(bad: object) -> None:
    """Negative, NaN, infinite, boolean or non-numeric budgets are a 400 naming the exact field, never a 500."""
    with pytest.raises(InvalidInput) as excinfo:
        parse_windows(max_budget=bad)
    assert excinfo.value.field == "max_budget"
    with pytest.raises(InvalidInput) as excinfo:
        parse_windows(
            budget_limits=[{"budget_duration": "1h", "max_budget": 1}, {"budget_duration": "1d", "max_budget": bad}]
        )
    assert excinfo.value.field == "budget_limits[1].max_budget"
    with pytest.raises(InvalidInput) as excinfo:
        parse_windows(max_budget=bad, prefix="budget.")
    assert excinfo.value.field == "budget.max_budget"


@PROPERTY
@given(value=st.floats(min_value=-1e9, max_value=-1e-9))
def test_parse_max_budget_rejects_negative_amounts(value: float) -> None:
    """Any negative amount of at least one nano is refused."""
    with pytest.raises(InvalidInput):
        parse_max_budget(value, "max_budget")


def test_parse_max_budget_rejects_sub_nano_negative() -> None:
    """The spec says a negative max_budget is a 400, however small."""
    with pytest.raises(InvalidInput):
        parse_max_budget(-1e-12, "max_budget")


@pytest.mark.parametrize("huge", [1e20, -1e20, "1e30"])
def test_parse_max_budget_rejects_huge_amount_as_invalid_input(huge: object) -> None:
    """An absurd budget is a 400 naming the field, not an unhandled decimal error."""
    with pytest.raises(InvalidInput) as excinfo:
        parse_max_budget(huge, "max_budget")
    assert excinfo.value.field == "max_budget"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"budget_duration": "1d"}, "budget_duration"),
        ({"budget_duration": "1d", "prefix": "team."}, "team.budget_duration"),
        ({"max_budget": 1, "budget_duration": "1hr"}, "budget_duration"),
        ({"budget_duration": "0h"}, "budget_duration"),
        ({"budget_limits": [{"budget_duration": "5h", "max_budget": 1}]}, "budget_limits[0].budget_duration"),
        ({"budget_limits": [{"max_budget": 1}]}, "budget_limits[0]"),
        ({"budget_limits": [{"budget_duration": "1h"}]}, "budget_limits[0]"),
        ({"budget_limits": [{"budget_duration": "1h", "max_budget": 1, "extra": 1}]}, "budget_limits[0]"),
        ({"budget_limits": ["1h"]}, "budget_limits[0]"),
        ({"budget_limits": "not json"}, "budget_limits"),
        ({"budget_limits": '{"budget_duration": "1h"}'}, "budget_limits"),
        ({"budget_limits": 5}, "budget_limits"),
    ],
)
def test_parse_windows_rejects_malformed_input_naming_field(kwargs: dict[str, object], field: str) -> None:
    """Each malformed piece is a 400 that names the field the client sent; a lone duration limits nothing."""
    with pytest.raises(InvalidInput) as excinfo:
        parse_windows(**kwargs)  # type: ignore[arg-type]
    assert excinfo.value.field == field


def test_parse_windows_bad_duration_message_shows_grammar() -> None:
    """The 400 for a malformed duration teaches the grammar."""
    with pytest.raises(InvalidInput) as excinfo:
        parse_windows(max_budget=1, budget_duration="1.5h")
    assert GRAMMAR in excinfo.value.message


def test_parse_windows_keeps_reported_spend_fields_in_limits() -> None:
    """budget_limits echoed back from a read (with spend and reset_at) are accepted as input again."""
    _, limits = parse_windows(
        budget_limits=[{"budget_duration": "1h", "max_budget": 1, "spend": 0.2, "reset_at": "2026-01-01T00:00:00Z"}]
    )
    assert limits == (Window(parse_duration("1h"), NANOS),)


def test_find_window_by_any_spelling() -> None:
    """An admin can name a window by any spelling of its duration; no name means the primary window."""
    windows = [Window(None, NANOS), Window(parse_duration("1d"), 2 * NANOS), Window(parse_duration("1w"), 3 * NANOS)]
    assert find_window(windows, None) is windows[0]
    assert find_window(windows, "24h") is windows[1]
    assert find_window(windows, "daily") is windows[1]
    assert find_window(windows, "7d") is windows[2]
    assert find_window(windows, "1h") is None
    assert find_window([], None) is None
    with pytest.raises(InvalidInput):
        find_window(windows, "1x")


@PROPERTY
@given(text=duration_texts, instant=instants, zone_name=zone_names)
def test_period_clock_bounds_equal_period_of(text: str, instant: datetime, zone_name: str) -> None:
    """The hot-path cache gives exactly period_of's bounds, in epoch seconds, whether cached or not."""
    tz = ZoneInfo(zone_name)
    duration = parse_duration(text)
    window = Window(duration, NANOS)
    start, end = period_of(instant, duration, tz)
    expected = (int(start.timestamp()), int(end.timestamp()))
    clock = PeriodClock(tz)
    now_s = instant.timestamp()
    assert clock.bounds(window, now_s) == expected
    assert clock.bounds(window, now_s) == expected
    assert clock.bounds(window, expected[0]) == expected
    assert clock.bounds(window, expected[1] - 1e-3) == expected
    after = period_of(end, duration, tz)
    assert clock.bounds(window, expected[1]) == (int(after[0].timestamp()), int(after[1].timestamp()))


def test_period_clock_reuses_cached_bounds_within_period() -> None:
    """Inside one period the clock returns its cached tuple (no calendar arithmetic); past the end it moves on."""
    clock = PeriodClock(ZoneInfo("Europe/Berlin"))
    window = Window(parse_duration("1h"), NANOS)
    now_s = datetime(2024, 6, 1, 10, 15, tzinfo=UTC).timestamp()
    first = clock.bounds(window, now_s)
    assert clock.bounds(window, now_s + 60) is first
    assert clock.bounds(window, first[1] - 1) is first
    following = clock.bounds(window, first[1])
    assert following == (first[1], first[1] + 3600)
    assert clock.bounds(window, first[1] + 10) is following


def test_period_clock_lifetime_window_never_resets() -> None:
    """A lifetime (or unlimited) window has one period from the epoch to the far future."""
    clock = PeriodClock(ZoneInfo("UTC"))
    assert clock.bounds(UNLIMITED_LIFETIME, 1_700_000_000.5) == (LIFETIME_PERIOD_START_S, FAR_FUTURE_S)
    assert clock.bounds(Window(None, NANOS), 0) == (LIFETIME_PERIOD_START_S, FAR_FUTURE_S)
    assert clock.tz == ZoneInfo("UTC")
