"""Who may do what on the admin API, beyond the role dependencies of ``deps.py``.

- proxy admin (master key, or a key whose user has ``user_role: proxy_admin``): everything;
- ``proxy_admin_viewer``: every read (info, list), no write;
- internal users (and internal user viewers): their own user info, the teams they belong to;
- team admins (member role ``admin`` in the team's ``members_with_roles``, for the caller key's user): their
  team's members, its keys (generate, update, reset_spend) and its spend reset.
"""

from __future__ import annotations

from fastapi import Request

from ledgergate.api.auth import Principal
from ledgergate.api.errors import ApiError
from ledgergate.container import Container
from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.services.entity_admin import EntityAdmin
from ledgergate.services.teams import role_in_team


def container(request: Request) -> Container:
    services: Container = request.app.state.container
    return services


def entity_admin(request: Request) -> EntityAdmin:
    return container(request).entity_admin


def forbidden(message: str, param: str | None = None) -> ApiError:
    return ApiError(403, message, "permission_error", param)


def is_team_admin(team: Entity | None, caller: Principal) -> bool:
    return team is not None and role_in_team(team, caller.key.user_id) == "admin"


def is_team_member(team: Entity | None, caller: Principal) -> bool:
    return team is not None and role_in_team(team, caller.key.user_id) is not None


async def may_manage_team(request: Request, caller: Principal, team_id: str | None) -> bool:
    """A proxy admin, or an admin of ``team_id`` (``None``: no team, so only a proxy admin)."""
    if caller.is_admin:
        return True
    if team_id is None:
        return False
    team = await container(request).directory.get(EntityType.TEAM, team_id)
    return is_team_admin(team, caller)


async def require_team_manager(request: Request, caller: Principal, team_id: str | None, action: str) -> None:
    if not await may_manage_team(request, caller, team_id):
        raise forbidden(f"only a proxy admin or an admin of the team may {action}", "team_id")


async def require_key_manager(
    request: Request,
    caller: Principal,
    team_ids: tuple[str | None, ...],
    user_id: str | None,
    organization_id: str | None = None,
) -> None:
    """Key writes by a non-proxy-admin: every team involved must be theirs, the key's user one of its members,
    and no organization of the key's own (it would charge an organization outside their team)."""
    if caller.is_admin:
        return
    if organization_id is not None:
        raise forbidden("only a proxy admin may set a key's organization_id", "organization_id")
    for team_id in team_ids:
        await require_team_manager(request, caller, team_id, "create or change this key")
    if user_id is not None:
        team_id = team_ids[0]
        team = await container(request).directory.get(EntityType.TEAM, team_id) if team_id else None
        if team is None or role_in_team(team, user_id) is None:
            raise forbidden("a team admin may only issue keys to members of the team", "user_id")
