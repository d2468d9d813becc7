"""Shared fixtures; support code lives in tests/support."""

import pytest

from tests.support.fixtures import fake_upstream
from tests.support.timing import fresh_period

__all__ = ["clear_of_the_hour", "fake_upstream"]

# Gateway tests on the wall clock spend in "1h" and "1d" windows (and daily rollups) and read the spend back: a test
# running across an hour (and so across midnight UTC) would see its window reset under it. No test runs this long
# (a base value, scaled: tests/support/timing.py); the wait costs at most this once per hour of a run.
WALL_CLOCK_TEST_MAX_S = 60.0


@pytest.fixture(autouse=True)
def clear_of_the_hour() -> None:
    """Start every test with at least WALL_CLOCK_TEST_MAX_S (scaled) of the current UTC hour ahead."""
    fresh_period(3600, needed_s=WALL_CLOCK_TEST_MAX_S)
