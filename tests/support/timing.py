"""The one place tests read how patient to be: every start-up wait, poll deadline and test-side timing scales
with ``LEDGERGATE_TEST_TIME_SCALE``.

Base values in the tests are already generous for an idle 2-core machine (1.0, the default); a loaded machine or
a slow CI sets a larger factor (e.g. 3). Nothing here makes a test faster: a factor below 1 is refused, so a
typo cannot turn generous deadlines into flaky ones. Every helper takes base seconds and scales them itself.

Waits poll a condition until it holds, with a scaled deadline, instead of sleeping a fixed time; tests that must
not straddle a period boundary (a minute, a 2 s window, an hour) start at a fresh period.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping

TIME_SCALE_VARIABLE = "LEDGERGATE_TEST_TIME_SCALE"
POLL_S = 0.01


def read_time_scale(environ: Mapping[str, str]) -> float:
    """The factor in ``environ`` (1.0 when unset or empty); anything but a finite number >= 1 is an error."""
    text = environ.get(TIME_SCALE_VARIABLE, "").strip()
    if not text:
        return 1.0
    try:
        factor = float(text)
    except ValueError:
        raise ValueError(f"{TIME_SCALE_VARIABLE}={text!r}: must be a number >= 1 (e.g. 3)") from None
    if not math.isfinite(factor) or factor < 1.0:
        raise ValueError(f"{TIME_SCALE_VARIABLE}={text!r}: must be a finite number >= 1 (e.g. 3)")
    return factor


TIME_SCALE = read_time_scale(os.environ)


def scaled(seconds: float) -> float:
    """``seconds`` (a base value, generous on an idle machine) times the factor."""
    return seconds * TIME_SCALE


# What a test's HTTP client waits for one answer from a gateway on this machine: the bound of a hang, no speed.
HTTP_TIMEOUT_S = 30.0 * TIME_SCALE


def scaled_ms(seconds: float) -> int:
    """``scaled(seconds)`` in whole milliseconds, for APIs that take them (Playwright)."""
    return math.ceil(scaled(seconds) * 1000)


def wait_until(condition: Callable[[], bool], what: str, within_s: float, poll_s: float = POLL_S) -> None:
    """Block until ``condition()`` holds; fail naming ``what`` after ``scaled(within_s)`` seconds."""
    limit_s = scaled(within_s)
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit_s:g} s ({TIME_SCALE_VARIABLE}={TIME_SCALE:g}): {what}")
        time.sleep(poll_s)


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, within_s: float, poll_s: float = POLL_S
) -> None:
    """Poll ``condition`` (sync or async) until it holds; fail naming ``what`` after ``scaled(within_s)`` s."""
    limit_s = scaled(within_s)
    deadline = time.monotonic() + limit_s
    while True:
        result = condition()
        if await result if isinstance(result, Awaitable) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit_s:g} s ({TIME_SCALE_VARIABLE}={TIME_SCALE:g}): {what}")
        await asyncio.sleep(poll_s)


def seconds_to_fresh_period(period_s: float, needed_s: float, now_s: float) -> float:
    """How long to sleep so that at least ``scaled(needed_s)`` seconds of one ``period_s`` period lie ahead:
    0 when they already do, else to just past the next boundary. A need longer than the period is capped at
    the whole period (minus a margin), the most any start can give."""
    margin_s = min(0.05, period_s / 20)
    needed_s = min(scaled(needed_s), period_s - 2 * margin_s)
    remaining_s = period_s - now_s % period_s
    return 0.0 if remaining_s >= needed_s else remaining_s + margin_s


def fresh_period(period_s: float, needed_s: float, clock: Callable[[], float] = time.time) -> None:
    """Sleep, when needed, so that at least ``scaled(needed_s)`` s of the current wall-clock period remain."""
    time.sleep(seconds_to_fresh_period(period_s, needed_s, clock()))


async def fresh_period_async(period_s: float, needed_s: float, clock: Callable[[], float] = time.time) -> None:
    """``fresh_period`` without blocking the event loop (in-process gateways serve on other threads)."""
    await asyncio.sleep(seconds_to_fresh_period(period_s, needed_s, clock()))
