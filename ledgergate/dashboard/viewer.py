"""Who is looking at the dashboard and what they may see and do.

The dashboard shows, per role, what the admin API lets that role read:
- proxy admin: everything, every write;
- proxy admin viewer: everything, read-only;
- team admin (a key whose user is ``admin`` in some team): only those teams and their keys; may create and edit
  their keys and reset their spend, as the API allows. Writes still go through the API's own checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledgergate.container import Container
from ledgergate.dashboard.kinds import KINDS, KindInfo
from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.principals import Principal
from ledgergate.services.teams import role_in_team

TEAM_ADMIN_KINDS = ("keys", "teams")


@dataclass(frozen=True, slots=True)
class Viewer:
    principal: Principal
    admin_team_ids: frozenset[str]  # teams whose admin the key's user is
    csrf_token: str = ""

    @property
    def name(self) -> str:
        if self.principal.is_master:
            return "master key"
        key = self.principal.key
        return key.alias or f"key {key.id[:10]}…"

    @property
    def role_label(self) -> str:
        if self.principal.can_read_all:
            return self.principal.role.value.replace("_", " ")
        return "team admin"

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    @property
    def reads_all(self) -> bool:
        return self.principal.can_read_all

    @property
    def team_scope(self) -> frozenset[str] | None:
        """Spend records this viewer may see: ``None`` for all, else those of these teams."""
        return None if self.reads_all else self.admin_team_ids

    @property
    def may_log_in(self) -> bool:
        return self.reads_all or bool(self.admin_team_ids)

    def kinds(self) -> list[KindInfo]:
        return [info for slug, info in KINDS.items() if self.reads_all or slug in TEAM_ADMIN_KINDS]

    def sees(self, entity: Entity) -> bool:
        if self.reads_all:
            return True
        if entity.type is EntityType.TEAM:
            return entity.id in self.admin_team_ids
        if entity.type is EntityType.KEY:
            return entity.team_id in self.admin_team_ids
        return False

    def may_create(self, kind: KindInfo) -> bool:
        if not kind.editable:
            return False
        return self.is_admin or (kind.type is EntityType.KEY and bool(self.admin_team_ids))

    def may_edit(self, entity: Entity) -> bool:
        if self.is_admin:
            return entity.type in (EntityType.KEY, EntityType.TEAM, EntityType.USER, EntityType.TAG)
        return entity.type is EntityType.KEY and entity.team_id in self.admin_team_ids

    def may_reset(self, entity: Entity) -> bool:
        if self.is_admin:
            return True
        # A team admin resets their team's keys, never the team itself (services/authorization.py).
        return entity.type is EntityType.KEY and entity.team_id in self.admin_team_ids

    def may_block(self, entity: Entity) -> bool:
        return self.is_admin and entity.type is EntityType.KEY

    def visible(self, entities: Iterable[Entity]) -> list[Entity]:
        return [entity for entity in entities if self.sees(entity)]


async def viewer_for(container: Container, principal: Principal, csrf_token: str = "") -> Viewer:
    team_ids: frozenset[str] = frozenset()
    user_id = principal.key.user_id
    if not principal.can_read_all and user_id is not None:
        teams = await container.entity_admin.teams.teams_of(user_id)
        team_ids = frozenset(team.id for team in teams if role_in_team(team, user_id) == "admin")
    return Viewer(principal, team_ids, csrf_token)
