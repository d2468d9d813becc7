"""Budget windows: a limit over a duration, validated as a set, and the period cache the hot path reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ledgergate.domain.durations import Duration, DurationError, parse_duration, period_of
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.money import MoneyError, amount_nanos

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
    model: str | None = None  # set: the window counts and limits only requests for this public model name
    # Identifies the periods alone (``24h`` and ``1d`` share one), whatever the model.
    period_key: str = field(init=False, repr=False, compare=False)
    # Identifies the window's periods and scope; windows with the same key are duplicates. A model window's key
    # carries its model so that its counter, its adjustments and its ledger sum (which ``split_window_key`` reads
    # the model back from) are its own. Both are computed once: every admission names them.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        period_key = self.duration.canonical if self.duration is not None else LIFETIME
        object.__setattr__(self, "period_key", period_key)
        key = period_key if self.model is None else f"{period_key}{MODEL_SEPARATOR}{self.model}"
        object.__setattr__(self, "key", key)

    @property
    def label(self) -> str:
        return self.duration.text if self.duration is not None else LIFETIME

    @property
    def title(self) -> str:
        """How messages name the window: ``1d``, or ``1d for model 'gpt-4o'``."""
        return self.label if self.model is None else f"{self.label} for model {self.model!r}"


MODEL_SEPARATOR = "@"  # no period key contains it, so the first one ends the period part of a window key
MAX_MODEL_NAME_LENGTH = 255  # what a spend record's model column holds


def split_window_key(key: str) -> tuple[str, str | None]:
    """``(period key, model)`` of a window key; the model is ``None`` for a window over every model."""
    period, separator, model = key.partition(MODEL_SEPARATOR)
    return period, (model if separator else None)


def parse_max_budget(value: object, field: str) -> int:
    """A budget amount in USD from JSON, in nanos: see ``money.amount_nanos`` (range, rounding up)."""
    try:
        return amount_nanos(value)
    except MoneyError as exc:
        raise InvalidInput(field, str(exc)) from exc


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
        unknown = set(item) - {"budget_duration", "max_budget", "spend", "held", "reset_at"}  # a view sent back
        if unknown:
            raise InvalidInput(item_field, f"unknown field(s) {sorted(unknown)}")
        if item.get("budget_duration") is None or item.get("max_budget") is None:
            raise InvalidInput(item_field, "needs both budget_duration and max_budget")
        duration = _parse_duration_field(item["budget_duration"], f"{item_field}.budget_duration")
        nanos = parse_max_budget(item["max_budget"], f"{item_field}.max_budget")
        windows.append(Window(duration, nanos))
    return windows


_MODEL_BUDGET_FIELDS = {
    # LiteLLM's BudgetConfig also takes budget_limit/time_period for max_budget/budget_duration.
    "max_budget": "max_budget",
    "budget_limit": "max_budget",
    "budget_duration": "budget_duration",
    "time_period": "budget_duration",
    "budget_limits": "budget_limits",
}


def parse_model_max_budget(value: object, field: str = "model_max_budget") -> tuple[Window, ...]:
    """Per-model windows from ``{model: {max_budget, budget_duration, budget_limits?}}`` (LiteLLM's
    ``model_max_budget``); a bare number is a lifetime budget for the model. ``None`` means no model windows;
    a JSON string of the object is accepted, as for ``budget_limits``."""
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidInput(field, "is a string that is not a JSON object of model budgets") from exc
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be an object {model: {max_budget, budget_duration}}")
    windows: list[Window] = []
    for model, spec in value.items():
        model_field = f"{field}[{model}]"
        if not isinstance(model, str) or not model.strip() or len(model) > MAX_MODEL_NAME_LENGTH:
            raise InvalidInput(model_field, f"a model name must be 1 to {MAX_MODEL_NAME_LENGTH} characters")
        windows.extend(_parse_model_budget(model, spec, model_field))
    ensure_distinct(windows, field)
    return tuple(windows)


def _parse_model_budget(model: str, spec: object, field: str) -> list[Window]:
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return [Window(None, parse_max_budget(spec, f"{field}.max_budget"), model)]
    if not isinstance(spec, dict):
        raise InvalidInput(field, "must be an object {max_budget, budget_duration, budget_limits?} or a number")
    unknown = set(spec) - set(_MODEL_BUDGET_FIELDS) - {"spend", "held", "reset_at"}
    if unknown:
        raise InvalidInput(field, f"unknown field(s) {sorted(unknown)}")
    fields: dict[str, object] = {}
    for name, item in spec.items():
        canonical = _MODEL_BUDGET_FIELDS.get(name)
        if canonical is None:
            continue  # a view's spend/held/reset_at, sent back: not settable
        if canonical in fields:
            raise InvalidInput(field, f"sets {canonical} twice ({name!r} is another name for it)")
        fields[canonical] = item
    if fields.get("max_budget") is None and fields.get("budget_limits") is None:
        raise InvalidInput(field, "needs max_budget (with an optional budget_duration) or budget_limits")
    primary, limits = parse_windows(
        fields.get("max_budget"), fields.get("budget_duration"), fields.get("budget_limits"), prefix=f"{field}."
    )
    return [Window(w.duration, w.max_budget_nanos, model) for w in ([primary] if primary else []) + list(limits)]


def ensure_distinct(windows: Sequence[Window], field: str) -> None:
    """Reject two windows over the same periods (``24h`` and ``1d``) and model: their spends could never differ."""
    seen: dict[str, Window] = {}
    for window in windows:
        previous = seen.get(window.key)
        if previous is not None:
            raise InvalidInput(
                field,
                f"duplicate window: {previous.title!r} and {window.title!r} cover the same periods",
            )
        seen[window.key] = window


def find_window(windows: Sequence[Window], budget_duration: str | None, model: str | None = None) -> Window | None:
    """The window an admin names by duration (any spelling of it) and model; when no duration is named, the
    first window of that scope (the primary window, or the model's first window)."""
    scoped = [window for window in windows if window.model == model]
    if budget_duration is None:
        return scoped[0] if scoped else None
    try:
        wanted = parse_duration(budget_duration).canonical
    except DurationError as exc:
        raise InvalidInput("budget_duration", str(exc)) from exc
    for window in scoped:
        if window.period_key == wanted:
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
        cached = self._cache.get(window.period_key)
        if cached is not None and cached[0] * 1_000_000 <= now_us < cached[1] * 1_000_000:
            return cached
        instant = _EPOCH + timedelta(microseconds=now_us)
        start, end = period_of(instant, window.duration, self._tz)
        bounds = (int(start.timestamp()), int(end.timestamp()))
        self._cache[window.period_key] = bounds
        return bounds
