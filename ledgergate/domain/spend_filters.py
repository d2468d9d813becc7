"""Typed filters and rows of the read side: which ledger records a query covers, what a report or a top-N list
groups by, and one report row. The services pass the filters, the storage adapters turn them into SQL and return
rows."""

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


class ReportGroup(StrEnum):
    """What /spend/report groups by: an entity type charged by requests (``spend_charges``), or the model."""

    KEY = "key"
    USER = "user"
    TEAM = "team"
    TEAM_MEMBER = "team_member"
    ORGANIZATION = "organization"
    CUSTOMER = "customer"
    TAG = "tag"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One day's spend of one entity (or model): ``day`` indexes the report's days."""

    day: int
    entity_id: str
    cost_nanos: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
