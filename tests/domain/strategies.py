"""Hypothesis strategies and settings shared by the domain property tests."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Modest example counts keep the whole domain suite well under its runtime budget.
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Half-hour offsets (Kolkata), a 30-minute DST shift (Lord Howe) and both hemispheres' DST rules.
ZONE_NAMES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
# Zones whose every offset change in 2000-2100 is a whole number of hours.
WHOLE_HOUR_SHIFT_ZONES = frozenset({"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"})

zone_names = st.sampled_from(ZONE_NAMES)

instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)


def _divisors(cycle: int) -> list[int]:
    return [d for d in range(1, cycle + 1) if cycle % d == 0]


duration_texts = st.one_of(
    st.sampled_from([f"{n}s" for n in _divisors(60)]),
    st.sampled_from([f"{n}m" for n in _divisors(60)]),
    st.sampled_from([f"{n}h" for n in _divisors(24)]),
    st.integers(1, 400).map(lambda n: f"{n}d"),
    st.integers(1, 60).map(lambda n: f"{n}w"),
    st.integers(1, 36).map(lambda n: f"{n}mo"),
    st.sampled_from(["hourly", "daily", "weekly", "monthly"]),
)


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
