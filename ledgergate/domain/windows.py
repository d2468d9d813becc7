"""Budget windows: a limit over a duration, validated as a set, and the period cache the hot path reads."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from ledgergate.domain.durations import Duration, DurationError, parse_duration, period_of
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.money import MAX_NANOS, NANOS_PER_USD, MoneyError, usd_to_nanos

LIFETIME = "lifetime"
LIFETIME_PERIOD_START_S = 0
FAR_FUTURE_S = 253_402_300_799  # 9999-12-31T23:59:59Z: a lifetime window never resets


@dataclass(frozen=True, slots=True)
class Window:
    """One limit: ``max_budget_nanos`` per period of ``duration`` (``None``: over the entity's lifetime).

    ``max_budget_nanos`` is ``None`` only for the implicit, unlimited lifetime window an entity without budgets
    shows its spend in.
    """

    duration: Duration | None
    max_budget_nanos: int | None

    @property
    def key(self) -> str:
        """Identifies the window's periods; windows with the same key are duplicates."""
        return self.duration.canonical if self.duration is not None else LIFETIME

    @property
    def label(self) -> str:
        return self.duration.text if self.duration is not None else LIFETIME


def parse_max_budget(value: object, field: str) -> int:
    """A budget amount in USD from JSON: a finite number >= 0 (not a bool), returned in nanos."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(field, f"must be a number of USD >= 0, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(field, "must be a finite number of USD >= 0")
    try:
        # The sign is checked before rounding: -1e-12 is a negative budget, not a zero one.
        if Decimal(repr(value) if isinstance(value, float) else value) < 0:
            raise InvalidInput(field, f"must be >= 0, got {value!r}")
        nanos = usd_to_nanos(value)
    except (MoneyError, InvalidOperation) as exc:
        raise InvalidInput(field, f"must be a finite number of USD >= 0 ({exc})") from exc
    if nanos > MAX_NANOS:
        raise InvalidInput(field, f"is too large (at most {MAX_NANOS // NANOS_PER_USD} USD)")
    return nanos


def _parse_duration_field(value: object, field: str) -> Duration:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise InvalidInput(field, str(exc)) from exc


def parse_windows(
    max_budget: object = None,
    budget_duration: object = None,
    budget_limits: object = None,
    *,
    prefix: str = "",
) -> tuple[Window | None, tuple[Window, ...]]:
    """Build an entity's ``(primary window, budget_limits)`` from its API fields.

    ``max_budget`` alone is a lifetime window; ``budget_duration`` without ``max_budget`` is rejected because it
    would limit nothing. ``budget_limits`` may be a JSON string of the list (some clients send it that way).
    """
    primary: Window | None = None
    if max_budget is not None:
        nanos = parse_max_budget(max_budget, f"{prefix}max_budget")
        duration = None
        if budget_duration is not None:
            duration = _parse_duration_field(budget_duration, f"{prefix}budget_duration")
        primary = Window(duration, nanos)
    elif budget_duration is not None:
        _parse_duration_field(budget_duration, f"{prefix}budget_duration")
        raise InvalidInput(f"{prefix}budget_duration", "needs max_budget: a duration alone limits nothing")
    limits = tuple(_parse_budget_limits(budget_limits, f"{prefix}budget_limits"))
    ensure_distinct([primary, *limits] if primary else limits, f"{prefix}budget_limits")
    return primary, limits


def _parse_budget_limits(value: object, field: str) -> list[Window]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidInput(field, "is a string that is not a JSON list of windows") from exc
    if not isinstance(value, list):
        raise InvalidInput(field, "must be a list of {budget_duration, max_budget} objects")
    windows: list[Window] = []
    for index, item in enumerate(value):
        item_field = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(item_field, "must be an object {budget_duration, max_budget}")
        unknown = set(item) - {"budget_duration", "max_budget", "spend", "reset_at"}
        if unknown:
            raise InvalidInput(item_field, f"unknown field(s) {sorted(unknown)}")
        if item.get("budget_duration") is None or item.get("max_budget") is None:
            raise InvalidInput(item_field, "needs both budget_duration and max_budget")
        duration = _parse_duration_field(item["budget_duration"], f"{item_field}.budget_duration")
        nanos = parse_max_budget(item["max_budget"], f"{item_field}.max_budget")
        windows.append(Window(duration, nanos))
    return windows


def ensure_distinct(windows: Sequence[Window], field: str) -> None:
    """Reject two windows over the same periods (``24h`` and ``1d``): their spends could never differ."""
    seen: dict[str, Window] = {}
    for window in windows:
        previous = seen.get(window.key)
        if previous is not None:
            raise InvalidInput(
                field,
                f"duplicate window: {previous.label!r} and {window.label!r} cover the same periods",
            )
        seen[window.key] = window


def find_window(windows: Sequence[Window], budget_duration: str | None) -> Window | None:
    """The window an admin names by duration (any spelling of it); the primary window when none is named."""
    if budget_duration is None:
        return windows[0] if windows else None
    try:
        wanted = parse_duration(budget_duration).canonical
    except DurationError as exc:
        raise InvalidInput("budget_duration", str(exc)) from exc
    for window in windows:
        if window.key == wanted:
            return window
    return None


UNLIMITED_LIFETIME = Window(None, None)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(now_s: float) -> int:
    """The one conversion of clock seconds to the integer microseconds records are timestamped with."""
    return int(now_s * 1_000_000)


class PeriodClock:
    """Current period bounds per window key, in epoch seconds, recomputed only when a period ends.

    This keeps the calendar arithmetic of ``period_of`` off the request hot path.
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._cache: dict[str, tuple[int, int]] = {}

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    def bounds(self, window: Window, now_s: float) -> tuple[int, int]:
        """``(start_s, end_s)`` of ``window``'s period containing ``now_s``, judged at whole microseconds
        exactly as ``epoch_us`` truncates charge timestamps, so a hold and its record share one period."""
        if window.duration is None:
            return LIFETIME_PERIOD_START_S, FAR_FUTURE_S
        now_us = epoch_us(now_s)
        cached = self._cache.get(window.key)
        if cached is not None and cached[0] * 1_000_000 <= now_us < cached[1] * 1_000_000:
            return cached
        instant = _EPOCH + timedelta(microseconds=now_us)
        start, end = period_of(instant, window.duration, self._tz)
        bounds = (int(start.timestamp()), int(end.timestamp()))
        self._cache[window.key] = bounds
        return bounds
