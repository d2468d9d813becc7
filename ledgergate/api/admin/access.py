"""The admin routes' handles on the running services: the container, and the guard that asks
``services.authorization.authorize`` (``services/admin_guard.py``; a refusal is a 403)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request

from ledgergate.api.errors import ApiError
from ledgergate.container import Container
from ledgergate.domain.principals import Principal
from ledgergate.services.admin_commands import AdminCommands
from ledgergate.services.admin_guard import AdminGuard
from ledgergate.services.authorization import Action
from ledgergate.services.entity_admin import EntityAdmin


def container(request: Request) -> Container:
    services: Container = request.app.state.container
    return services


def entity_admin(request: Request) -> EntityAdmin:
    return container(request).entity_admin


def commands(request: Request) -> AdminCommands:
    return container(request).admin_commands


def guard(request: Request) -> AdminGuard:
    return commands(request).guard


def forbidden(message: str, param: str | None = None) -> ApiError:
    return ApiError(403, message, "permission_error", param)


async def require_team(request: Request, caller: Principal, action: Action, team_id: str | None) -> None:
    await guard(request).require_team(caller, action, team_id)


async def require_member_change(
    request: Request, caller: Principal, team_id: str, member: Mapping[str, Any], role_after: str | None
) -> None:
    await guard(request).require_member_change(caller, team_id, member, role_after)


async def require_user_change(
    request: Request, caller: Principal, user_id: str | None, fields: Mapping[str, Any], *, deleting: bool = False
) -> None:
    await guard(request).require_user_change(caller, user_id, fields, deleting=deleting)
