"""Entity lists: every row with each of its windows as a bar; filtered and sorted on the server.

Sorting by spend or by how full the windows are needs every row's windows, so rows are built for the whole
(visible) list and only the first ``MAX_ROWS`` are drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledgergate.container import Container
from ledgergate.dashboard.kinds import KINDS, KindInfo
from ledgergate.dashboard.viewer import Viewer
from ledgergate.dashboard.windows import WindowBar, window_bars
from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.services.teams import members_of

MAX_ROWS = 500
SORTS = {"name": "Name", "spend": "Spend", "usage": "Fullest window", "created": "Created"}
LEVELS = {"": "all", "near": "≥ 80% of a limit", "full": "refusing requests"}
_LEVEL_ORDER = {"ok": 0, "warn": 1, "full": 2}


@dataclass(frozen=True, slots=True)
class EntityRow:
    entity: Entity
    bars: list[WindowBar]
    columns: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.entity.display_name()

    @property
    def spend_nanos(self) -> int:
        return self.bars[0].spent_nanos if self.bars else 0

    @property
    def max_percent(self) -> float:
        return max((bar.used_percent for bar in self.bars if bar.limited), default=0.0)

    @property
    def worst_level(self) -> str:
        return max((bar.level for bar in self.bars), key=_LEVEL_ORDER.__getitem__, default="ok")


@dataclass(frozen=True, slots=True)
class ListQuery:
    q: str = ""
    level: str = ""
    sort: str = "name"
    descending: bool = False
    team_id: str = ""

    @classmethod
    def parse(cls, params: dict[str, str]) -> ListQuery:
        sort = params.get("sort", "name")
        level = params.get("level", "")
        return cls(
            q=params.get("q", "").strip()[:200],
            level=level if level in LEVELS else "",
            sort=sort if sort in SORTS else "name",
            descending=params.get("dir", "desc" if sort in ("spend", "usage") else "asc") == "desc",
            team_id=params.get("team_id", "").strip()[:255],
        )


@dataclass(frozen=True, slots=True)
class ListPage:
    kind: KindInfo
    rows: list[EntityRow]
    total: int  # before filtering
    matching: int  # after filtering, before MAX_ROWS
    query: ListQuery
    teams: list[Entity]  # the team filter's options (keys only)


async def visible_entities(container: Container, viewer: Viewer, kind: KindInfo) -> list[Entity]:
    entities = container.entity_admin.entities
    if viewer.reads_all:
        return await entities.list_all(kind.type)
    found: list[Entity] = []
    for team_id in sorted(viewer.admin_team_ids):
        if kind.type is EntityType.KEY:
            found.extend(await entities.list_all(EntityType.KEY, team_id=team_id))
        elif kind.type is EntityType.TEAM:
            team = await container.directory.get(EntityType.TEAM, team_id)
            found.extend([team] if team is not None else [])
    return viewer.visible(found)


async def _team_name(container: Container, team_id: str | None) -> str:
    if not team_id:
        return ""
    team = await container.directory.get(EntityType.TEAM, team_id)
    return team.display_name() if team is not None else team_id


async def _columns(container: Container, entity: Entity, now_s: float) -> dict[str, str]:
    if entity.type is EntityType.KEY:
        status = "blocked" if entity.blocked else "expired" if entity.is_expired(now_s) else "active"
        return {
            "Team": await _team_name(container, entity.team_id),
            "User": entity.user_id or "",
            "Tags": ", ".join(entity.tags),
            "Status": status,
        }
    if entity.type is EntityType.TEAM:
        return {
            "Organization": entity.organization_id or "",
            "Members": str(len(members_of(entity))),
            "Tags": ", ".join(entity.tags),
            "Status": "blocked" if entity.blocked else "active",
        }
    if entity.type is EntityType.USER:
        return {"Email": str(entity.extra.get("user_email") or ""), "Role": str(entity.extra.get("user_role") or "")}
    if entity.type is EntityType.CUSTOMER:
        return {"Status": "blocked" if entity.blocked else "active"}
    if entity.type is EntityType.TAG:
        return {"Description": str(entity.extra.get("description") or "")}
    return {}


async def entity_rows(container: Container, entities: list[Entity]) -> list[EntityRow]:
    now_s = container.clock.now_s()
    return [EntityRow(e, await window_bars(container, e), await _columns(container, e, now_s)) for e in entities]


def _matches(row: EntityRow, query: ListQuery) -> bool:
    if query.team_id and row.entity.team_id != query.team_id:
        return False
    if query.level == "near" and row.worst_level == "ok":
        return False
    if query.level == "full" and row.worst_level != "full":
        return False
    if query.q:
        needle = query.q.lower()
        haystack = [row.entity.id, row.entity.alias or "", *row.columns.values()]
        return any(needle in text.lower() for text in haystack)
    return True


def _sort_key(query: ListQuery) -> Callable[[EntityRow], tuple[Any, ...]]:
    if query.sort == "spend":
        return lambda row: (row.spend_nanos, row.name.lower())
    if query.sort == "usage":
        return lambda row: (row.max_percent, row.name.lower())
    if query.sort == "created":
        return lambda row: (row.entity.created_at_s, row.name.lower())
    return lambda row: (row.name.lower(), row.entity.id)


async def list_page(container: Container, viewer: Viewer, kind: KindInfo, query: ListQuery) -> ListPage:
    entities = await visible_entities(container, viewer, kind)
    rows = [row for row in await entity_rows(container, entities) if _matches(row, query)]
    rows.sort(key=_sort_key(query), reverse=query.descending)
    teams: list[Entity] = []
    if kind.type is EntityType.KEY:
        teams = sorted(
            await visible_entities(container, viewer, KINDS["teams"]),
            key=lambda team: team.display_name().lower(),
        )
    return ListPage(kind, rows[:MAX_ROWS], len(entities), len(rows), query, teams)
