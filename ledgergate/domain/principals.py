"""Who is calling the admin API or the gateway: a role, the calling key, and whether it is the master key."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ledgergate.domain.entities import Entity


class Role(StrEnum):
    PROXY_ADMIN = "proxy_admin"
    PROXY_ADMIN_VIEWER = "proxy_admin_viewer"
    INTERNAL_USER = "internal_user"
    INTERNAL_USER_VIEWER = "internal_user_viewer"


@dataclass(frozen=True, slots=True)
class KeyCeiling:
    """The most a key may do, recorded when a non-proxy-admin issued or rebound it: the role and the teams its
    issuer could act as admin of, capped at the key's user's own at that moment (domain/key_ceilings.py)."""

    role: Role
    team_admin_of: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    key: Entity  # the calling key (a synthetic one for the master key)
    is_master: bool = False
    ceiling: KeyCeiling | None = None  # None: the key follows its user (issued by a proxy admin)

    @property
    def actor(self) -> str:
        if self.is_master:
            return "master_key"
        return f"key:{self.key.alias or self.key.id[:12]}"

    @property
    def user_id(self) -> str | None:
        return None if self.is_master else self.key.user_id

    @property
    def team_scope(self) -> str | None:
        """A capped key reads only what concerns its own team, never its user's personal keys (``None``: all)."""
        return None if self.ceiling is None else (self.key.team_id or "")

    def may_admin_team(self, team_id: str) -> bool:
        """Whether the key's ceiling leaves it a team admin's powers in ``team_id`` (membership checked apart)."""
        return self.ceiling is None or team_id in self.ceiling.team_admin_of

    @property
    def is_admin(self) -> bool:
        return self.role is Role.PROXY_ADMIN

    @property
    def can_read_all(self) -> bool:
        return self.role in (Role.PROXY_ADMIN, Role.PROXY_ADMIN_VIEWER)
