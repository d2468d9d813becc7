"""Rate limits next to budgets: ``rpm_limit``, ``tpm_limit`` and ``max_parallel_requests`` of an entity, and the
counter lines that enforce them in the same atomic admission step as its budget windows.

Counters. rpm and tpm count per minute (the fixed ``1m`` periods of budget windows, so every instance agrees on
them), under window names of their own (``rpm``, ``tpm``) that no budget window can take. A minute's counter is
rebuilt from the ledger like a budget's (``SqlLedger.window_sums``): the number of requests charged to the entity
in that minute, or the sum of their tokens, so a restart forgives nothing. ``max_parallel_requests`` is a
hold-only counter without periods: each admitted request holds 1 until it is settled or its hold expires, and
nothing is ever added to its spend, so it rebuilds to 0 (the holds live in the counter store).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ledgergate.domain.admission import CounterKey, CounterLine, CounterUnit, LineState
from ledgergate.domain.charging import EntityRef
from ledgergate.domain.durations import parse_duration
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.windows import FAR_FUTURE_S, LIFETIME_PERIOD_START_S, PeriodClock, Window

MAX_RATE_LIMIT = 10**15  # far beyond any real rate; keeps counters well inside 64-bit integers
RATE_PERIOD = Window(parse_duration("1m"), None)  # the period of rpm and tpm counters


class RateLimitField(StrEnum):
    """The API field of a rate limit; its counter's window name and unit follow from it."""

    RPM = "rpm_limit"
    TPM = "tpm_limit"
    PARALLEL = "max_parallel_requests"

    @property
    def window(self) -> str:
        return _WINDOW_OF[self]

    @property
    def unit(self) -> CounterUnit:
        return _UNIT_OF[self]


_WINDOW_OF = {RateLimitField.RPM: "rpm", RateLimitField.TPM: "tpm", RateLimitField.PARALLEL: "parallel"}
_UNIT_OF = {
    RateLimitField.RPM: CounterUnit.REQUESTS,
    RateLimitField.TPM: CounterUnit.TOKENS,
    RateLimitField.PARALLEL: CounterUnit.PARALLEL,
}
_UNIT_OF_WINDOW = {window: _UNIT_OF[field] for field, window in _WINDOW_OF.items()}
RATE_LIMIT_FIELDS = tuple(field.value for field in RateLimitField)
_FIELDS = tuple(RateLimitField)


def unit_of_window(window: str) -> CounterUnit:
    """What a counter of ``window`` counts (what a loader must sum to rebuild it)."""
    return _UNIT_OF_WINDOW.get(window, CounterUnit.COST_NANOS)


def parse_rate_limit(value: object, field: str) -> int | None:
    """A rate limit from JSON: a positive integer, or null (no limit)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be a positive integer or null, got {value!r}")
    if not 1 <= value <= MAX_RATE_LIMIT:
        raise InvalidInput(field, f"must be between 1 and {MAX_RATE_LIMIT}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class RateLimits:
    """An entity's limits per field; a missing field is unlimited."""

    limits: Mapping[RateLimitField, int]

    @classmethod
    def of(cls, extra: Mapping[str, object]) -> RateLimits:
        """The limits stored in an entity's ``extra``; malformed values (written by hand) are ignored."""
        found: dict[RateLimitField, int] = {}
        for field in _FIELDS:
            value = extra.get(field.value)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                found[field] = value
        return cls(found)

    def over(self, inherited: RateLimits) -> RateLimits:
        """Own limits win field by field over a shared budget object's."""
        return RateLimits({**inherited.limits, **self.limits})


NO_RATE_LIMITS = RateLimits({})


@dataclass(frozen=True, slots=True)
class RateLine:
    """One rate limit of one entity, as a counter line."""

    field: RateLimitField
    limit: int
    line: CounterLine

    @property
    def resets(self) -> bool:
        return self.field is not RateLimitField.PARALLEL


def rate_lines(
    target: EntityRef, limits: RateLimits, periods: PeriodClock, now_s: float, tokens_bound: int
) -> list[RateLine]:
    """The lines of ``target``'s limits for a request admitted at ``now_s`` that uses at most ``tokens_bound``."""
    found: list[RateLine] = []
    if not limits.limits:  # the common case, on every request: no enum iteration
        return found
    for field in _FIELDS:
        limit = limits.limits.get(field)
        if limit is None:
            continue
        if field is RateLimitField.PARALLEL:
            start_s, end_s = LIFETIME_PERIOD_START_S, FAR_FUTURE_S
        else:
            start_s, end_s = periods.bounds(RATE_PERIOD, now_s)
        amount = tokens_bound if field is RateLimitField.TPM else 1
        key = CounterKey(target.type.value, target.id, field.window, start_s)
        found.append(RateLine(field, limit, CounterLine(key, limit, end_s, field.unit, amount)))
    return found


def with_tokens_used(line: CounterLine, tokens: int) -> CounterLine:
    """``line`` as settled: a tokens line adds the tokens actually used, not the bound it held."""
    return line._replace(amount=tokens) if line.unit is CounterUnit.TOKENS else line


@dataclass(frozen=True, slots=True)
class RateLimited:
    """A rate limit that refused the request, with what the 429 shows."""

    entity: EntityRef
    entity_name: str
    field: RateLimitField
    limit: int
    state: LineState
    period_start_s: int
    reset_at_s: int | None  # None: max_parallel_requests, freed by a request finishing, not by time
    retry_after_s: int


def retry_after_s(rate: RateLine, now_s: float) -> int:
    """Seconds until the period that refused ends (at least 1); 1 for requests in flight."""
    if not rate.resets:
        return 1
    return max(1, math.ceil(rate.line.period_end_s - now_s))
