"""The entity kinds the dashboard lists, by URL slug, with the API routes that write them."""

from __future__ import annotations

from dataclasses import dataclass

from ledgergate.domain.charging import EntityType
from ledgergate.domain.spend_filters import LogFilter


@dataclass(frozen=True, slots=True)
class KindInfo:
    slug: str  # URL segment: /ui/<slug>
    type: EntityType
    title: str  # "Keys"
    singular: str  # "key"
    editable: bool  # create and edit forms exist (keys, teams, users, tags)

    def log_filter(self, entity_id: str, limit: int) -> LogFilter:
        """The spend records charged to one entity of this kind."""

        def when(entity_type: EntityType) -> str | None:
            return entity_id if self.type is entity_type else None

        return LogFilter(
            key_id=when(EntityType.KEY),
            user_id=when(EntityType.USER),
            team_id=when(EntityType.TEAM),
            organization_id=when(EntityType.ORGANIZATION),
            customer_id=when(EntityType.CUSTOMER),
            tag=when(EntityType.TAG),
            limit=limit,
        )


KINDS: dict[str, KindInfo] = {
    info.slug: info
    for info in (
        KindInfo("keys", EntityType.KEY, "Keys", "key", True),
        KindInfo("teams", EntityType.TEAM, "Teams", "team", True),
        KindInfo("users", EntityType.USER, "Users", "user", True),
        KindInfo("organizations", EntityType.ORGANIZATION, "Organizations", "organization", False),
        KindInfo("customers", EntityType.CUSTOMER, "Customers", "customer", False),
        KindInfo("tags", EntityType.TAG, "Tags", "tag", True),
    )
}
BY_TYPE: dict[EntityType, KindInfo] = {info.type: info for info in KINDS.values()}
