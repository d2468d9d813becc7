"""Which keys ``GET /key/list`` shows a caller: every key to proxy admins and viewers, a user's keys to that user's
keys, and only itself to a non-admin key that belongs to no user."""

from __future__ import annotations

from typing import Protocol

from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity


class KeyLister(Protocol):
    async def list(
        self,
        entity_type: EntityType,
        *,
        user_id: str | None = None,
        team_id: str | None = None,
        alias: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[Entity]: ...


async def visible_keys(
    store: KeyLister,
    caller_key: Entity,
    can_read_all: bool,
    *,
    team_scope: str | None = None,
    user_id: str | None,
    team_id: str | None,
    alias: str | None,
    offset: int,
    limit: int,
) -> list[Entity]:
    """The keys matching the filters that the caller may see, one page of them.

    ``team_scope``: the team a capped key (domain/key_ceilings.py) reads within, never its user's personal keys.
    A key without a user is answered without a query: filtering on a sentinel user id (once ``"\\x00no-user"``)
    made PostgreSQL refuse the NUL byte, a 500 for every such key.
    """
    if can_read_all:
        return await store.list(
            EntityType.KEY, user_id=user_id, team_id=team_id, alias=alias, offset=offset, limit=limit
        )
    if team_scope is not None:  # a key a team admin issued: its user's keys in its own team only
        if team_id not in (None, team_scope):
            return []
        team_id = team_scope
    if caller_key.user_id is None:
        matches = (team_id is None or caller_key.team_id == team_id) and (alias is None or caller_key.alias == alias)
        return [caller_key] if matches and offset == 0 and limit > 0 else []
    return await store.list(
        EntityType.KEY, user_id=caller_key.user_id, team_id=team_id, alias=alias, offset=offset, limit=limit
    )
