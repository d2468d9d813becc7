"""An entity's detail page: its windows, properties, related entities, recent spend records and adjustments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from ledgergate.container import Container
from ledgergate.dashboard.formatting import iso_utc, usd_text
from ledgergate.dashboard.kinds import BY_TYPE, KINDS, KindInfo
from ledgergate.dashboard.listing import EntityRow, entity_rows
from ledgergate.dashboard.viewer import Viewer
from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.services.teams import members_of

RECENT_RECORDS = 25
RECENT_ADJUSTMENTS = 50


@dataclass(frozen=True, slots=True)
class Link:
    text: str
    href: str | None  # None: the viewer may not open it (or it is gone)


@dataclass(frozen=True, slots=True)
class Related:
    title: str
    kind: KindInfo | None  # rows link to this kind's detail pages; None for team members
    rows: list[EntityRow]


@dataclass(frozen=True, slots=True)
class Detail:
    kind: KindInfo
    row: EntityRow
    properties: list[tuple[str, str | Link]]
    related: list[Related] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    inherited_budget: str | None = None


async def _link(container: Container, viewer: Viewer, entity_type: EntityType, entity_id: str | None) -> str | Link:
    if not entity_id:
        return "—"
    entity = await container.directory.get(entity_type, entity_id)
    if entity is None:
        return f"{entity_id} (not found)"
    kind = BY_TYPE.get(entity_type)
    href = f"/{kind.slug}/view/{quote(entity.id, safe='')}" if kind is not None and viewer.sees(entity) else None
    return Link(entity.display_name(), href)


async def _properties(container: Container, viewer: Viewer, entity: Entity) -> list[tuple[str, str | Link]]:
    props: list[tuple[str, str | Link]] = [("Id", entity.id)]
    if entity.alias:
        props.append(("Alias", entity.alias))
    if entity.type is EntityType.KEY:
        props += [
            ("Secret", str(entity.extra.get("key_name") or "(not shown)")),
            ("Team", await _link(container, viewer, EntityType.TEAM, entity.team_id)),
            ("User", await _link(container, viewer, EntityType.USER, entity.user_id)),
            ("Expires", iso_utc(entity.expires_at_s) or "never"),
        ]
    if entity.type in (EntityType.KEY, EntityType.TEAM):
        props.append(("Organization", await _link(container, viewer, EntityType.ORGANIZATION, entity.organization_id)))
    if entity.type is EntityType.USER:
        props += [
            ("Email", str(entity.extra.get("user_email") or "—")),
            ("Role", str(entity.extra.get("user_role") or "—")),
        ]
    if entity.type is EntityType.TAG:
        props.append(("Description", str(entity.extra.get("description") or "—")))
    if entity.type in (EntityType.KEY, EntityType.TEAM, EntityType.CUSTOMER):
        props.append(("Blocked", "yes" if entity.blocked else "no"))
    if entity.tags:
        props.append(("Tags", ", ".join(entity.tags)))
    if entity.models:
        props.append(("Models", ", ".join(entity.models)))
    if entity.soft_budget_nanos is not None:
        props.append(("Soft budget", usd_text(entity.soft_budget_nanos)))
    if entity.budget_id:
        props.append(("Shared budget", entity.budget_id))
    if entity.metadata:
        props.append(("Metadata", orjson.dumps(dict(entity.metadata), option=orjson.OPT_SORT_KEYS).decode()))
    lifetime = await container.spend_reader.lifetime_spend(entity.ref)
    props += [
        ("Lifetime spend", usd_text(lifetime)),
        ("Created", iso_utc(entity.created_at_s) or "—"),
        ("Updated", iso_utc(entity.updated_at_s) or "—"),
    ]
    return props


async def _related(container: Container, viewer: Viewer, entity: Entity) -> list[Related]:
    entities = container.entity_admin.entities
    keys_kind, teams_kind = KINDS["keys"], KINDS["teams"]
    related: list[Related] = []
    if entity.type is EntityType.TEAM:
        keys = viewer.visible(await entities.list_all(EntityType.KEY, team_id=entity.id))
        related.append(Related("Keys of this team", keys_kind, await entity_rows(container, keys)))
        members = await entities.list_all(EntityType.TEAM_MEMBER, team_id=entity.id)
        roles = {str(m.get("user_id")): str(m.get("role") or "user") for m in members_of(entity)}
        rows = await entity_rows(container, members)
        rows = [EntityRow(r.entity, r.bars, {"Role": roles.get(r.entity.user_id or "", "user")}) for r in rows]
        related.append(Related("Members (their budget within the team)", None, rows))
    elif entity.type is EntityType.USER:
        keys = viewer.visible(await entities.list_all(EntityType.KEY, user_id=entity.id))
        related.append(Related("Keys of this user", keys_kind, await entity_rows(container, keys)))
        teams = viewer.visible(await container.entity_admin.teams.teams_of(entity.id))
        related.append(Related("Teams", teams_kind, await entity_rows(container, teams)))
    elif entity.type is EntityType.ORGANIZATION:
        teams = viewer.visible(await entities.list_all(EntityType.TEAM, organization_id=entity.id))
        related.append(Related("Teams", teams_kind, await entity_rows(container, teams)))
    return related


async def _names_of_keys(container: Container, key_ids: set[str]) -> dict[str, str]:
    names = {}
    for key_id in key_ids:
        key = await container.directory.get(EntityType.KEY, key_id)
        names[key_id] = key.display_name() if key is not None else f"{key_id[:10]}…"
    return names


async def build_detail(container: Container, viewer: Viewer, kind: KindInfo, entity: Entity) -> Detail:
    (row,) = await entity_rows(container, [entity])
    records = await container.spend_reader.recent_records(kind.log_filter(entity.id, RECENT_RECORDS))
    key_names = await _names_of_keys(container, {r["key_id"] for r in records})
    for record in records:
        record["key_name"] = key_names[record["key_id"]]
        record["charged_at"] = iso_utc(record["charged_at_us"] / 1_000_000)
    adjustments = await container.spend_reader.adjustments(entity.type.value, entity.id, RECENT_ADJUSTMENTS)
    for adjustment in adjustments:
        adjustment["created_at"] = iso_utc(adjustment["created_at_us"] / 1_000_000)
    return Detail(
        kind=kind,
        row=row,
        properties=await _properties(container, viewer, entity),
        related=await _related(container, viewer, entity),
        records=records,
        adjustments=adjustments,
        inherited_budget=entity.budget_id,
    )
