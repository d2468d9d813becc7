"""The reference model of the authorization state machine (test_authz_machine.py): what a key may do, derived
from the gateway's stored state, and the check that every gain a call caused was held by its caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledgergate.domain.key_ceilings import ceiling_of
from tests.support.gateway import CHAT_MODEL, FLAT_MODEL

RANKS = {"internal_user_viewer": 1, "internal_user": 2, "proxy_admin_viewer": 3, "proxy_admin": 4}
MODELS = frozenset({FLAT_MODEL, CHAT_MODEL})


@dataclass(frozen=True)
class Authority:
    """What a key can do, derived from the gateway's state."""

    rank: int
    admin_of: frozenset[str]
    member_of: frozenset[str]
    usable: bool
    models: frozenset[str]
    tags: frozenset[str]

    @property
    def is_proxy_admin(self) -> bool:
        return self.rank >= RANKS["proxy_admin"]


@dataclass(frozen=True)
class State:
    users: dict[str, str]  # user_id -> role
    team_members: dict[str, dict[str, str]]  # team -> user -> member role
    team_models: dict[str, frozenset[str]]
    team_tags: dict[str, frozenset[str]]
    keys: dict[str, dict[str, Any]]  # token -> key view

    def authority(self, token: str) -> Authority:
        key = self.keys[token]
        user_id = key.get("user_id")
        role = self.users.get(user_id, "internal_user") if user_id else "internal_user"
        member_of = frozenset(t for t, members in self.team_members.items() if user_id in members)
        admin_of = frozenset(t for t in member_of if self.team_members[t][user_id] == "admin")
        rank = RANKS.get(role, 2)
        if key.get("ceiling") is not None:  # what the gateway grants a key a non-proxy-admin issued
            ceiling_rank, ceiling_teams = key["ceiling"]
            rank, admin_of = min(rank, ceiling_rank), admin_of & ceiling_teams
        models = allowed(key.get("models") or [])
        if key.get("team_id") in self.team_models:
            models &= self.team_models[key["team_id"]]
        return Authority(rank, admin_of, member_of, not key.get("blocked"), models, frozenset(key.get("tags") or []))


def key_ceiling(key: Any) -> tuple[int, frozenset[str]] | None:
    ceiling = ceiling_of(key)
    return None if ceiling is None else (RANKS[ceiling.role.value], ceiling.team_admin_of)


def allowed(models: list[str]) -> frozenset[str]:
    return MODELS if not models or "all-proxy-models" in models else frozenset(models) & MODELS


def check_gains(actor: Authority, before: State, after: State, path: str, proxy_blocks: set[str]) -> None:
    """Every gain a non-master call caused must be held by its caller."""
    where = f"{path} by {actor}"
    assert not path.startswith("/team/") or not path.endswith("/reset_spend") or actor.is_proxy_admin, where
    for user_id, role in after.users.items():
        old = before.users.get(user_id)
        if old != role and not (old is None and role == "internal_user"):
            assert RANKS[role] < actor.rank and (old is None or RANKS[old] < actor.rank), f"{where}: {user_id} {role}"
    for token in after.keys:
        gained = after.authority(token)
        had = before.authority(token) if token in before.keys else None
        if had is None or gained.rank > had.rank:
            assert gained.rank <= actor.rank, f"{where}: key {token[:8]} now acts as rank {gained.rank}"
        if actor.is_proxy_admin:
            continue
        old_member = had.member_of if had else frozenset()
        assert gained.admin_of - (had.admin_of if had else frozenset()) <= actor.admin_of, where
        assert gained.member_of - old_member <= actor.member_of, f"{where}: key {token[:8]} joined a team"
        if had is None:
            continue
        assert not (gained.usable and not had.usable and token in proxy_blocks), f"{where}: lifted a proxy block"
        assert gained.models <= had.models, f"{where}: key {token[:8]} may now use {gained.models - had.models}"
        actor_tags = frozenset(tag for team in actor.admin_of for tag in before.team_tags.get(team, ()))
        assert gained.tags ^ had.tags <= actor_tags, f"{where}: key {token[:8]} tags {gained.tags ^ had.tags}"
