"""Budget alerts: which thresholds of a window its spend has reached, and the alert record itself.

A threshold is reached, not "crossed by this settle": when requests settle concurrently, each sees the others'
spend, so deriving a per-settle previous spend can hide a crossing from all of them. Exactly once per
(entity, window, period, threshold) is instead guaranteed by the alert store's unique claim.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from ledgergate.domain.errors import InvalidInput

DEFAULT_ALERT_THRESHOLDS: tuple[float, ...] = (0.8, 0.9, 1.0)
SOFT_BUDGET_THRESHOLD = "soft_budget"  # the threshold column of a soft budget alert
MAX_THRESHOLDS = 20


class AlertEvent(StrEnum):
    THRESHOLD = "budget_threshold_crossed"
    SOFT_BUDGET = "soft_budget_crossed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # claimed; being delivered (or its deliverer crashed: the resend sweep takes it over)
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt of the last round failed; resent by the sweep while young enough
    UNSENT = "unsent"  # no webhook configured when it was claimed: logged only


@dataclass(frozen=True, slots=True)
class Crossing:
    event: AlertEvent
    threshold: str  # the claim key: threshold_key(fraction), or SOFT_BUDGET_THRESHOLD
    fraction: float | None  # None for the soft budget


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as logged; (entity_type, entity_id, window, period_start_s, threshold) is unique."""

    alert_id: str
    event: AlertEvent
    entity_type: str
    entity_id: str
    entity_name: str
    window: str  # Window.key: the canonical duration or "lifetime"
    budget_duration: str | None  # the window as the admin wrote it; None for a lifetime window
    period_start_s: int
    period_end_s: int
    threshold: str
    spend_nanos: int  # the window's spend when the alert was raised
    max_budget_nanos: int
    soft_budget_nanos: int | None
    created_at_us: int
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    delivered_at_us: int | None = None

    @property
    def fraction(self) -> float | None:
        return None if self.threshold == SOFT_BUDGET_THRESHOLD else float(self.threshold)


def threshold_key(fraction: float) -> str:
    """``0.8`` -> ``"0.8"``, ``1`` -> ``"1.0"``: one spelling per value, so claims of equal thresholds collide."""
    return repr(float(fraction))


def parse_alert_thresholds(value: object, field: str = "alert_thresholds") -> tuple[float, ...]:
    """A list of fractions of a window's max_budget, each in (0, 1]; duplicates dropped, sorted."""
    if not isinstance(value, list | tuple):
        raise InvalidInput(field, f"must be a list of numbers in (0, 1], got {value!r}")
    if len(value) > MAX_THRESHOLDS:
        raise InvalidInput(field, f"at most {MAX_THRESHOLDS} thresholds")
    fractions: set[float] = set()
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise InvalidInput(f"{field}[{index}]", f"must be a number in (0, 1], got {item!r}")
        if not 0 < item <= 1:
            raise InvalidInput(f"{field}[{index}]", f"must be in (0, 1] (a fraction of max_budget), got {item!r}")
        fractions.add(float(item))
    return tuple(sorted(fractions))


@functools.lru_cache(maxsize=256)
def _ratio(fraction: float) -> tuple[int, int]:
    """``fraction`` as the exact decimal it was written as: 0.8 is 4/5, not the binary neighbour."""
    exact = Fraction(repr(float(fraction)))
    return exact.numerator, exact.denominator


def _threshold_reached(spent_nanos: int, fraction: float, limit_nanos: int) -> bool:
    numerator, denominator = _ratio(fraction)
    return spent_nanos > 0 and spent_nanos * denominator >= numerator * limit_nanos


def _reached(spent_nanos: int, trigger: Fraction | int) -> bool:
    # No spend reaches nothing: a zero budget refuses every request, it is not "100% used".
    return spent_nanos > 0 and spent_nanos >= trigger


def reached_crossings(
    spent_nanos: int,
    limit_nanos: int,
    thresholds: Sequence[float],
    soft_budget_nanos: int | None = None,
) -> list[Crossing]:
    """Every threshold (``fraction x limit``) and the soft budget that ``spent_nanos`` has reached.

    ``soft_budget_nanos`` is passed only for the window the soft budget applies to (the primary one).
    """
    crossings = [
        Crossing(AlertEvent.THRESHOLD, threshold_key(fraction), float(fraction))
        for fraction in thresholds
        # Exact: 0.8 x 100 nanos is 80, not 80.00000000000001.
        if _threshold_reached(spent_nanos, fraction, limit_nanos)
    ]
    if soft_budget_nanos is not None and _reached(spent_nanos, soft_budget_nanos):
        crossings.append(Crossing(AlertEvent.SOFT_BUDGET, SOFT_BUDGET_THRESHOLD, None))
    return crossings
