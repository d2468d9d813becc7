"""Typed filters of the read side: which ledger records a query covers, and what top-N lists group by. The
services pass them, the storage adapters turn them into SQL and return rows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which ledger records a query covers; ``None`` leaves a field unconstrained. Times: ``[start_us, end_us)``."""

    key_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    customer_id: str | None = None
    tag: str | None = None
    model: str | None = None
    start_us: int | None = None
    end_us: int | None = None
    offset: int = 0
    limit: int = 100


class Dimension(StrEnum):
    """What top-N lists group by: an entity charged by the request, or the requested model."""

    KEY = "key"
    USER = "user"
    TEAM = "team"
    ORGANIZATION = "organization"
    CUSTOMER = "customer"
    TAG = "tag"
    MODEL = "model"
