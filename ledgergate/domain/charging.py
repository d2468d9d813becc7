"""Who pays for a request. Admission and settlement both use ``charge_targets``, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EntityType(StrEnum):
    KEY = "key"
    USER = "user"
    TEAM = "team"
    TEAM_MEMBER = "team_member"
    ORGANIZATION = "organization"
    CUSTOMER = "customer"
    TAG = "tag"
    GLOBAL = "global"
    BUDGET = "budget"  # a shared budget object: a limit template, never charged itself


GLOBAL_ENTITY_ID = "global"


@dataclass(frozen=True, slots=True)
class EntityRef:
    type: EntityType
    id: str

    def __str__(self) -> str:
        return f"{self.type.value}:{self.id}"


def team_member_id(team_id: str, user_id: str) -> str:
    return f"{team_id}/{user_id}"


@dataclass(frozen=True, slots=True)
class RequestParties:
    """Everything about a request that decides who pays, resolved from the key, its team and the request."""

    key_id: str
    user_id: str | None = None
    team_id: str | None = None
    team_organization_id: str | None = None
    key_organization_id: str | None = None
    customer_id: str | None = None
    key_tags: tuple[str, ...] = ()
    team_tags: tuple[str, ...] = ()
    client_tags: tuple[str, ...] = ()
    allow_client_tags: bool = False
    has_global_budget: bool = False


def request_tags(parties: RequestParties) -> tuple[str, ...]:
    """The key's and the team's tags always; the client's only where allowed. Order kept, duplicates dropped."""
    tags = parties.key_tags + parties.team_tags
    if parties.allow_client_tags:
        tags += parties.client_tags
    if not tags:
        return ()
    return tuple(dict.fromkeys(tag for tag in tags if tag))


def charge_targets(parties: RequestParties) -> tuple[EntityRef, ...]:
    """Every entity a request is checked against and charged to, each exactly once.

    A team key charges the team and the team member, never the user's personal budget (LiteLLM bug class:
    team key spend leaking into the user's personal spend); a personal key charges the user.
    """
    targets = [EntityRef(EntityType.KEY, parties.key_id)]
    if parties.team_id is not None:
        targets.append(EntityRef(EntityType.TEAM, parties.team_id))
        if parties.user_id is not None:
            targets.append(EntityRef(EntityType.TEAM_MEMBER, team_member_id(parties.team_id, parties.user_id)))
    elif parties.user_id is not None:
        targets.append(EntityRef(EntityType.USER, parties.user_id))
    organization_id = parties.team_organization_id or parties.key_organization_id
    if organization_id is not None:
        targets.append(EntityRef(EntityType.ORGANIZATION, organization_id))
    if parties.customer_id:
        targets.append(EntityRef(EntityType.CUSTOMER, parties.customer_id))
    targets.extend(EntityRef(EntityType.TAG, tag) for tag in request_tags(parties))
    if parties.has_global_budget:
        targets.append(EntityRef(EntityType.GLOBAL, GLOBAL_ENTITY_ID))
    return tuple(targets)
