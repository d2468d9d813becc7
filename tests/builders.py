"""Shared test builders: spend records, entities with their windows, and clocks.

Every default here is a plain, valid value; a test passes what its assertions depend on, so a reader sees the
values that matter at the call site and nothing else.
"""

from __future__ import annotations

import time
from typing import Any

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.durations import parse_duration
from ledgergate.domain.entities import Entity
from ledgergate.domain.ledger import RequestStatus, SpendRecord
from ledgergate.domain.windows import Window

# 2026-01-01T00:00:00Z: a day, hour and minute boundary, where the fixed clocks start unless told otherwise.
T0_S = 1_767_225_600
US_PER_S = 1_000_000
CHAT_ROUTE = "/v1/chat/completions"


def spend_record(
    request_id: str,
    *,
    cost_nanos: int,
    charged_at_us: int,
    targets: tuple[EntityRef, ...],
    key_id: str | None = None,
    model: str = "demo",
    deployment_id: str = "demo-0",
    route: str = CHAT_ROUTE,
    prompt_tokens: int = 10,
    completion_tokens: int = 20,
    status: RequestStatus = RequestStatus.SUCCESS,
    ended_at_us: int | None = None,
    **optional: Any,
) -> SpendRecord:
    """One ledger record. ``key_id`` defaults to the first target's id and ``ended_at_us`` to a microsecond after
    ``charged_at_us``; ``optional`` takes the record's optional fields (user_id, team_id, tags, ...)."""
    return SpendRecord(
        request_id=request_id,
        key_id=targets[0].id if key_id is None else key_id,
        targets=targets,
        model=model,
        deployment_id=deployment_id,
        route=route,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_nanos=cost_nanos,
        status=status,
        charged_at_us=charged_at_us,
        ended_at_us=charged_at_us + 1 if ended_at_us is None else ended_at_us,
        **optional,
    )


def window(duration: str | None, limit_nanos: int | None, model: str | None = None) -> Window:
    """A budget window from its config spelling: ``window("1h", 500)``; ``None`` for a lifetime window."""
    return Window(parse_duration(duration) if duration is not None else None, limit_nanos, model)


def entity(
    entity_type: EntityType, entity_id: str, primary: Window | None = None, *limits: Window, **fields: Any
) -> Entity:
    """An entity with a primary window (max_budget [+ budget_duration]) and further ``budget_limits`` windows;
    ``fields`` sets any other Entity field (alias, team_id, extra, created_at_s, ...)."""
    return Entity(entity_type, entity_id, primary_window=primary, budget_limits=tuple(limits), **fields)


class ManualClock:
    """A clock that moves only when the test moves it: ``advance`` goes forward, ``now`` may be set to anything."""

    def __init__(self, now_s: float = T0_S) -> None:
        self.now = now_s

    def now_s(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "advance() never goes backwards; set .now to jump"
        self.now += seconds


class MonotonicClock(ManualClock):
    """A ManualClock that may never go backwards (the reference model's invariant): ``set`` refuses the past."""

    def set(self, now_s: float) -> None:
        assert now_s >= self.now
        self.now = now_s


class WallClock:
    """The real time, for code that takes a clock in tests that run on the wall clock."""

    def now_s(self) -> float:
        return time.time()
