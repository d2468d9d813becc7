"""The entity admin use cases, wired together once (the container holds one ``EntityAdmin``)."""

from __future__ import annotations

from dataclasses import dataclass

from ledgergate.domain.ports import Clock
from ledgergate.services.directory import Directory
from ledgergate.services.entities import EntityLister, EntityService
from ledgergate.services.keys import KeyService
from ledgergate.services.teams import TeamService
from ledgergate.services.users import UserService
from ledgergate.services.views import EntityViews


@dataclass(frozen=True, slots=True)
class EntityAdmin:
    entities: EntityService
    teams: TeamService
    users: UserService

    @classmethod
    def build(
        cls, directory: Directory, store: EntityLister, views: EntityViews, keys: KeyService, clock: Clock
    ) -> EntityAdmin:
        entities = EntityService(directory, store, views, clock)
        teams = TeamService(entities, keys)
        return cls(entities, teams, UserService(entities, teams, keys))
