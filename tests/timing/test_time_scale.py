"""The test suite's one time factor (tests/support/timing.py): how it is read, and the waits built on it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e import cluster
from tests.support import threaded_server, timing
from tests.support.timing import (
    TIME_SCALE_VARIABLE,
    read_time_scale,
    scaled,
    seconds_to_fresh_period,
    until,
    wait_until,
)

TESTS = Path(__file__).resolve().parents[1]


def test_time_scale_defaults_to_one_when_unset_or_empty() -> None:
    assert read_time_scale({}) == 1.0
    assert read_time_scale({TIME_SCALE_VARIABLE: "  "}) == 1.0


def test_time_scale_reads_a_larger_factor() -> None:
    assert read_time_scale({TIME_SCALE_VARIABLE: "3"}) == 3.0
    assert read_time_scale({TIME_SCALE_VARIABLE: " 2.5 "}) == 2.5


@pytest.mark.parametrize("text", ["0.5", "0", "-2", "nan", "inf", "fast", "1,5"])
def test_time_scale_refuses_what_would_shorten_or_break_every_wait(text: str) -> None:
    """A factor below 1 would make generous deadlines tight (flaky); garbage must not pass silently."""
    with pytest.raises(ValueError, match=re.escape(TIME_SCALE_VARIABLE)):
        read_time_scale({TIME_SCALE_VARIABLE: text})


def test_scaled_multiplies_by_the_factor_read_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "TIME_SCALE", 3.0)
    assert scaled(2.0) == 6.0
    assert timing.scaled_ms(0.0101) == 31


def test_wait_until_returns_once_the_condition_holds() -> None:
    calls = iter([False, False, True])
    wait_until(lambda: next(calls), "third call", within_s=5, poll_s=0)


def test_wait_until_fails_naming_what_it_waited_for_and_the_factor() -> None:
    with pytest.raises(AssertionError, match=rf"not within .* s \({TIME_SCALE_VARIABLE}=.*\): the moon"):
        wait_until(lambda: False, "the moon", within_s=0.01)


async def test_until_polls_sync_and_async_conditions() -> None:
    calls = iter([False, True])
    await until(lambda: next(calls), "second call", within_s=5, poll_s=0)

    async def ready() -> bool:
        return True

    await until(ready, "an async condition", within_s=5)
    with pytest.raises(AssertionError, match="never"):
        await until(lambda: False, "never", within_s=0.01)


def test_fresh_period_waits_only_when_too_little_of_the_period_is_left() -> None:
    assert seconds_to_fresh_period(60, needed_s=10, now_s=600.0) == 0.0  # a minute just began
    assert seconds_to_fresh_period(60, needed_s=10, now_s=649.0) == 0.0  # 11 s left
    waited = seconds_to_fresh_period(60, needed_s=10 / timing.TIME_SCALE, now_s=655.0)  # 5 s left
    assert 5.0 < waited <= 5.1 and (655.0 + waited) % 60 < 1


def test_fresh_period_caps_a_need_longer_than_the_period_at_a_fresh_start() -> None:
    """Asking for more than the whole period cannot be met: the most is to start right after a boundary."""
    assert seconds_to_fresh_period(2, needed_s=100, now_s=10.0) == 0.0
    waited = seconds_to_fresh_period(2, needed_s=100, now_s=10.5)
    assert 1.5 < waited <= 1.6


def test_no_test_sleeps_a_fixed_time_of_a_second_or_more() -> None:
    """Regression for issue 11 ("a not ready within 30.0 s" at load ~34): a wait is a polled condition with a
    scaled deadline, or a scaled sleep; a literal sleep of a second or more is the kind that fails on a busy
    machine."""
    literal_sleep = re.compile(r"\bsleep\(\s*(\d+(?:\.\d*)?)\s*\)")
    offenders = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in TESTS.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if (found := literal_sleep.search(line)) and float(found.group(1)) >= 1.0
    ]
    assert offenders == []


def test_time_scale_is_read_in_one_place() -> None:
    """Only tests/support/timing.py reads the variable; everything else goes through scaled()."""
    readers = [
        path.relative_to(TESTS).as_posix()
        for path in TESTS.rglob("*.py")
        if f'"{TIME_SCALE_VARIABLE}"' in path.read_text(encoding="utf-8")
    ]
    assert readers == ["support/timing.py"]


def test_wait_until_gives_up_after_the_scaled_deadline_not_before() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError):
        wait_until(lambda: False, "nothing", within_s=0.05)
    assert time.monotonic() - started >= scaled(0.05)  # a lower bound: never flaky on a slow machine


def test_gateway_process_start_up_wait_outlasts_a_loaded_machine() -> None:
    """Regression for issue 11: ``a not ready within 30.0 s`` at load ~34 (counter_loss_under_load passed
    alone). The start-up waits of gateway processes and in-thread servers are generous base values, scaled."""
    waits = (cluster.STARTUP_TIMEOUT_S, threaded_server.STARTUP_TIMEOUT_S)
    assert waits == (scaled(240.0), scaled(120.0))
