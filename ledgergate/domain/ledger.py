"""Ledger records: the source of truth every displayed spend and every counter is derived from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ledgergate.domain.charging import EntityRef


class RequestStatus(StrEnum):
    SUCCESS = "success"
    ERROR = "error"  # the upstream answered with an error or could not be reached
    CANCELLED = "cancelled"  # the client went away; charged for what was generated


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One LLM request that reached an upstream. ``request_id`` is unique: writing it twice is a no-op.

    ``charged_at_us`` is the admission instant: it decides which periods the cost falls in, the same ones the
    request's hold was placed in.
    """

    request_id: str
    key_id: str
    targets: tuple[EntityRef, ...]
    model: str
    deployment_id: str
    route: str
    prompt_tokens: int
    completion_tokens: int
    cost_nanos: int
    status: RequestStatus
    charged_at_us: int
    ended_at_us: int
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    customer_id: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Adjustment:
    """An admin change of one window's spend in one period (``reset_spend``): ``delta = new - previous``."""

    adjustment_id: str
    entity: EntityRef
    window: str
    period_start_s: int
    previous_nanos: int
    new_nanos: int
    actor: str
    reason: str
    created_at_us: int

    @property
    def delta_nanos(self) -> int:
        return self.new_nanos - self.previous_nanos


def window_spend(
    records: Iterable[SpendRecord],
    adjustments: Iterable[Adjustment],
    entity: EntityRef,
    window: str,
    period_start_s: int,
    period_end_s: int,
) -> int:
    """The reference definition of a window's spend: charges in the period plus that period's adjustments."""
    start_us, end_us = period_start_s * 1_000_000, period_end_s * 1_000_000
    charged = sum(
        record.cost_nanos
        for record in records
        if entity in record.targets and start_us <= record.charged_at_us < end_us
    )
    adjusted = sum(
        adj.delta_nanos
        for adj in adjustments
        if adj.entity == entity and adj.window == window and adj.period_start_s == period_start_s
    )
    return charged + adjusted


def first_of_each_request(request_ids: Sequence[str]) -> list[bool]:
    """The ledger's write rule within one batch: ``True`` for the first entry of each request id, ``False`` for
    every later one. A later entry writes nothing (no record, no charge, no rollup), whatever it carries: the
    request was already charged by the first. Against the ledger itself the same rule holds through the request
    id's uniqueness (a record already there wins); the writers, the group-commit loop and the spill all ask here."""
    seen: set[str] = set()
    firsts: list[bool] = []
    for request_id in request_ids:
        firsts.append(request_id not in seen)
        seen.add(request_id)
    return firsts
