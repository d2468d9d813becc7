"""Who may do what: ONE pure decision, ``authorize(principal, action, target)``, for every admin route.

The rule behind every answer: nobody grants what they do not hold. A principal may only bring about a state in
which no principal has a role, a team or a scope that someone holding it did not give. The caller loads what
the decision needs (the entities before and after the change, the teams involved) and turns a ``Denied`` into
a 403; the decision itself does no I/O, so the HTTP API, the dashboard and the tests all ask the same function.

Roles, strongest first: the master key, ``proxy_admin``, ``proxy_admin_viewer``, ``internal_user``,
``internal_user_viewer``. Team admins are internal users with member role ``admin`` in a team: they manage
their team's keys and plain members, within what the team itself may do (see docs/security.md#roles-and-authorization).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ledgergate.domain.entities import Entity
from ledgergate.domain.key_ceilings import issue_ceiling
from ledgergate.domain.memberships import TEAM_ADMIN, TEAM_USER, role_in_team
from ledgergate.domain.principals import KeyCeiling, Principal, Role
from ledgergate.services.key_limits import has_proxy_admin_limits, loosened_limit

ALL_MODELS = "all-proxy-models"
BLOCKED_BY_PROXY_ADMIN = "proxy_admin"
BLOCKED_BY_TEAM_ADMIN = "team_admin"
_MASTER_RANK = 5
_RANKS = {
    Role.PROXY_ADMIN: 4,
    Role.PROXY_ADMIN_VIEWER: 3,
    Role.INTERNAL_USER: 2,
    Role.INTERNAL_USER_VIEWER: 1,
}


class Action(StrEnum):
    READ_ANY = "read_any"  # info and list of every entity, spend logs and reports, alerts
    ADMIN_WRITE = "admin_write"  # teams, organizations, customers, tags, budgets; user/org/... spend resets
    TEAM_READ = "team_read"  # one team (target: TeamScope)
    TEAM_RESET_SPEND = "team_reset_spend"  # target: TeamScope
    KEY_WRITE = "key_write"  # generate, update, block, unblock (target: KeyChange)
    KEY_DELETE = "key_delete"  # target: KeyChange with ``after`` the key as it is
    KEY_RESET_SPEND = "key_reset_spend"  # target: KeyReset
    MEMBER_WRITE = "member_write"  # add, update, remove a team member (target: MemberChange)
    USER_WRITE = "user_write"  # new, update, delete a user (target: UserChange)


@dataclass(frozen=True, slots=True)
class Everything:
    """No particular object: the action concerns the gateway as a whole."""


@dataclass(frozen=True, slots=True)
class TeamScope:
    team: Entity | None  # None: no team (or an unknown one), which only readers / proxy admins reach


@dataclass(frozen=True, slots=True)
class KeyChange:
    before: Entity | None  # None: a key being created
    after: Entity  # the key as it would be stored
    teams: Mapping[str, Entity]  # every team ``before`` or ``after`` names, by id
    bound_user: Entity | None = None  # the user ``after`` is bound to, if it exists
    bound_user_team_ids: frozenset[str] = frozenset()  # every team that user belongs to
    before_user: Entity | None = None  # the user ``before`` was bound to, if it exists


@dataclass(frozen=True, slots=True)
class KeyReset:
    key: Entity
    team: Entity | None  # the key's team, if it exists


@dataclass(frozen=True, slots=True)
class MemberChange:
    team: Entity
    user: Entity | None  # None: a user the call creates (it starts as a plain internal user)
    user_team_ids: frozenset[str] = frozenset()  # every team the user belongs to now
    role_after: str | None = TEAM_USER  # None: removed from the team


@dataclass(frozen=True, slots=True)
class UserChange:
    before: Entity | None  # None: a user being created
    role_after: str | None  # the ``user_role`` it would have; None: deleted


Target = Everything | TeamScope | KeyChange | KeyReset | MemberChange | UserChange


@dataclass(frozen=True, slots=True)
class Denied:
    reason: str
    param: str | None = None


def authorize(principal: Principal, action: Action, target: Target) -> Denied | None:
    """``None`` if ``principal`` may perform ``action`` on ``target``, else why not (and which field)."""
    if action is Action.READ_ANY:
        return None if principal.can_read_all else Denied("only a proxy admin or proxy admin viewer may read this")
    if action is Action.ADMIN_WRITE:
        return None if principal.is_admin else Denied("only a proxy admin may do this")
    if isinstance(target, TeamScope):
        return _team_action(principal, action, target.team)
    if action is Action.KEY_RESET_SPEND and isinstance(target, KeyReset):
        return _key_reset(principal, target)
    if action in (Action.KEY_WRITE, Action.KEY_DELETE) and isinstance(target, KeyChange):
        return _key_change(principal, action, target)
    if action is Action.MEMBER_WRITE and isinstance(target, MemberChange):
        return _member_change(principal, target)
    if action is Action.USER_WRITE and isinstance(target, UserChange):
        return _user_change(principal, target)
    return Denied(f"{action.value} does not apply to {type(target).__name__}")  # a caller's mistake: refuse


def rank(principal: Principal) -> int:
    return _MASTER_RANK if principal.is_master else _RANKS[principal.role]


def role_rank(role: object) -> int:
    """An unknown stored role counts as the weakest: it is what the authenticator treats it as."""
    try:
        return _RANKS[Role(str(role))]
    except ValueError:
        return _RANKS[Role.INTERNAL_USER]


def user_role(user: Entity) -> str:
    return str(user.extra.get("user_role") or Role.INTERNAL_USER.value)


def is_team_admin(principal: Principal, team: Entity | None) -> bool:
    """Admin of ``team`` by membership, and the calling key's ceiling (domain/key_ceilings.py) leaves it that."""
    return (
        team is not None and role_in_team(team, principal.user_id) == TEAM_ADMIN and principal.may_admin_team(team.id)
    )


def _manages(principal: Principal, team: Entity | None, what: str) -> Denied | None:
    """A team admin's write on ``team``: refused when not its admin, or when a proxy admin blocked the team."""
    if team is None or not is_team_admin(principal, team):
        return Denied(f"only a proxy admin or an admin of the team may {what}", "team_id")
    if team.blocked:
        return Denied(f"team {team.id!r} is blocked; only a proxy admin may {what} until it is unblocked", "team_id")
    return None


def key_ceiling_for(
    issuer: Principal, user: Entity | None, user_teams: Iterable[Entity]
) -> KeyCeiling | None:
    """The ceiling a key issued or rebound by ``issuer`` for ``user`` records; ``None`` when a proxy admin
    writes it (the key follows its user, as before)."""
    if issuer.is_admin:
        return None
    user_id = user.id if user is not None else None
    both_admin = [t.id for t in user_teams if role_in_team(t, user_id) == TEAM_ADMIN and is_team_admin(issuer, t)]
    return issue_ceiling(issuer, user, both_admin)


def bind_to_issuer(principal: Principal, fields: Mapping[str, object], *, creating: bool) -> dict[str, object]:
    """A key a team admin issues (or rebinds) without a user is bound to the team admin: it then carries their
    member budget and their user's models and limits, which a user-less team key would skip."""
    bound = dict(fields)
    if principal.is_admin or principal.user_id is None:
        return bound
    if (creating or "user_id" in fields) and fields.get("user_id") is None:
        bound["user_id"] = principal.user_id
    return bound


def is_team_member(principal: Principal, team: Entity | None) -> bool:
    return team is not None and role_in_team(team, principal.user_id) is not None


def blocked_by(principal: Principal) -> str:
    """What a key's ``blocked_by`` records: only a block by a proxy admin is out of a team admin's reach."""
    return BLOCKED_BY_PROXY_ADMIN if principal.is_admin else BLOCKED_BY_TEAM_ADMIN


def _team_action(principal: Principal, action: Action, team: Entity | None) -> Denied | None:
    if principal.is_admin:
        return None
    if action is Action.TEAM_READ:
        in_scope = team is not None and principal.team_scope in (None, team.id)  # a capped key: its own team
        if principal.can_read_all or (is_team_member(principal, team) and in_scope):
            return None
        return Denied("only a proxy admin, a proxy admin viewer or a member of the team may read it", "team_id")
    if action is Action.TEAM_RESET_SPEND:
        # A team admin resetting their own team's spend would make the team's budget meaningless.
        return Denied("only a proxy admin may reset a team's spend (a team admin cannot lift their own budget)")
    return Denied("only a proxy admin may do this")


# ---- keys ------------------------------------------------------------------------------------------------------


def _key_change(principal: Principal, action: Action, change: KeyChange) -> Denied | None:
    after, before = change.after, change.before
    if after.user_id is not None and _above(principal, change.bound_user):
        return Denied("a key may not be bound to a user whose role is above the caller's", "user_id")
    if principal.is_admin:
        return None
    team_ids = {after.team_id, before.team_id if before else after.team_id}
    for team_id in sorted(str(team_id) for team_id in team_ids if team_id is not None):
        denied = _manages(principal, change.teams.get(team_id), "create or change this key")
        if denied is not None:
            return denied
    if None in team_ids:
        return Denied("only a proxy admin or an admin of the team may create or change this key", "team_id")
    if before is not None and _above(principal, change.before_user):
        return Denied("this key belongs to a user whose role is above the caller's", "key")
    if action is Action.KEY_DELETE:
        return _proxy_admin_hold(before, "delete")
    if before is not None and has_proxy_admin_limits(before):
        loosened = loosened_limit(before, after)
        if loosened is not None:
            return Denied(
                f"{loosened}: a proxy admin set this key's limits; a team admin may only tighten them", loosened
            )
    if after.organization_id != (before.organization_id if before else None):
        return Denied("only a proxy admin may set a key's organization_id", "organization_id")
    team = change.teams[str(after.team_id)]
    return (
        _bound_user_rule(principal, change, team)
        or _block_rule(before, after)
        or _models_rule(before, after, team)
        or _tags_rule(before, after, change.teams)
    )


def _proxy_admin_hold(key: Entity | None, what: str) -> Denied | None:
    """A key carrying a proxy admin's limits or block: a team admin may not ``what`` it (that would undo them)."""
    if key is None:
        return None
    if has_proxy_admin_limits(key):
        return Denied(f"a proxy admin set this key's limits; only a proxy admin may {what} it", "key")
    if key.blocked and key.extra.get("blocked_by", BLOCKED_BY_PROXY_ADMIN) == BLOCKED_BY_PROXY_ADMIN:
        return Denied(f"a proxy admin blocked this key; only a proxy admin may {what} it", "key")
    return None


def _key_reset(principal: Principal, target: KeyReset) -> Denied | None:
    if principal.is_admin:
        return None
    if target.key.team_id is None:
        return Denied("only a proxy admin may reset the spend of a key without a team", "key")
    return _manages(principal, target.team, "reset this key's spend") or _proxy_admin_hold(target.key, "reset")


def _above(principal: Principal, user: Entity | None) -> bool:
    return user is not None and role_rank(user_role(user)) > rank(principal)


def _bound_user_rule(principal: Principal, change: KeyChange, team: Entity) -> Denied | None:
    """A team admin binds keys only to themselves or to a plain member of the team who is in no other team: a
    key acts as its user, so binding it to anyone else hands over that user's role, teams and scope."""
    user_id = change.after.user_id
    unchanged = change.before is not None and change.before.user_id == user_id
    if user_id is None and not unchanged and rank(principal) < _RANKS[Role.INTERNAL_USER]:
        # A key without a user acts as internal_user: a viewer team admin would hand out a role above their own.
        return Denied("a key without a user acts as internal_user, a role above the caller's", "user_id")
    if user_id is None or unchanged or user_id == principal.user_id:
        return None
    if role_in_team(team, user_id) != TEAM_USER:
        return Denied("a team admin may only issue keys to plain members (role 'user') of the team", "user_id")
    if change.bound_user is None:
        return Denied(f"user {user_id!r} not found", "user_id")
    if change.bound_user_team_ids - {team.id}:
        return Denied("a team admin may not issue keys to a user who belongs to other teams too", "user_id")
    return None


def _block_rule(before: Entity | None, after: Entity) -> Denied | None:
    if before is None or not before.blocked or after.blocked:
        return None
    if before.extra.get("blocked_by", BLOCKED_BY_PROXY_ADMIN) == BLOCKED_BY_PROXY_ADMIN:
        return Denied("only a proxy admin may lift a block a proxy admin set", "blocked")
    return None


def _models_rule(before: Entity | None, after: Entity, team: Entity) -> Denied | None:
    """A team admin may only narrow a key's models, and only to models the team itself may use."""
    wanted = allowed_models(after.models)
    previous = allowed_models(before.models) if before is not None else None
    if before is not None and wanted == previous:
        return None
    team_models = allowed_models(team.models)
    if wanted is not None and team_models is not None and not wanted <= team_models:
        outside = ", ".join(sorted(wanted - team_models))
        return Denied(f"models: {outside} is not among the team's models", "models")
    if before is not None and previous is not None and (wanted is None or not wanted <= previous):
        return Denied("models: a team admin may only narrow a key's models, never widen or clear them", "models")
    return None


def _tags_rule(before: Entity | None, after: Entity, teams: Mapping[str, Entity]) -> Denied | None:
    """Tags charge their budgets: a team admin adds or removes only the tags of their teams."""
    controlled = {tag for team in teams.values() for tag in team.tags}
    changed = set(after.tags) ^ set(before.tags if before else ())
    foreign = sorted(changed - controlled)
    if foreign:
        return Denied(f"tags: {', '.join(foreign)} is not a tag of the team; only a proxy admin may set it", "tags")
    return None


def allowed_models(models: Iterable[str]) -> frozenset[str] | None:
    """A ``models`` list as a set; ``None`` means every model (an empty list, or ``all-proxy-models``)."""
    names = frozenset(models)
    return None if not names or ALL_MODELS in names else names


# ---- members and users -------------------------------------------------------------------------------------------


def _member_change(principal: Principal, change: MemberChange) -> Denied | None:
    if principal.is_admin:
        return None
    team = change.team
    denied = _manages(principal, team, "change its members")
    if denied is not None:
        return denied
    user_id = change.user.id if change.user else None
    role_before = role_in_team(team, user_id)
    if user_id is not None and user_id == principal.user_id:
        # Their own entry holds the limits a proxy admin set on them (role, max_budget_in_team).
        return Denied("a team admin may not change their own membership (role or budget); ask a proxy admin", "user_id")
    if TEAM_ADMIN in (role_before, change.role_after) and user_id != principal.user_id:
        return Denied("only a proxy admin may add, promote, demote or remove a team admin", "role")
    if change.role_after == TEAM_ADMIN:
        return Denied("only a proxy admin may make a team admin", "role")
    if role_before is None and change.user is not None:
        if _above(principal, change.user):
            return Denied("a team admin may not add a user whose role is above their own", "user_id")
        if change.user_team_ids - {team.id}:
            return Denied("a team admin may only add users who belong to no other team", "user_id")
    return None


def _user_change(principal: Principal, change: UserChange) -> Denied | None:
    """Only a proxy admin writes users, and a role only moves below the writer's own (the master key is above
    every proxy admin, so only it makes or unmakes proxy admins)."""
    if not principal.is_admin:
        return Denied("only a proxy admin may create, change or delete users")
    role_before = user_role(change.before) if change.before else None
    if change.role_after == role_before:
        return None
    if change.before is not None and role_rank(role_before) >= rank(principal):
        return Denied("only a stronger role may change or delete a user with this role", "user_role")
    if change.role_after is not None and role_rank(change.role_after) >= rank(principal):
        return Denied(f"only a stronger role than {principal.role.value} may grant {change.role_after}", "user_role")
    return None
