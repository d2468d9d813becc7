"""/user/* admin routes (internal users: people who hold keys)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ledgergate.api.admin.access import commands, entity_admin, forbidden, require_user_change
from ledgergate.api.admin.deps import ERROR_RESPONSES, Admin, AnyCaller, Reader
from ledgergate.api.admin.params import PathId, QueryId
from ledgergate.api.errors import ApiError
from ledgergate.domain.charging import EntityType
from ledgergate.services.admin_entity_schemas import UserDeleteIn, UserNewIn, UserRole, UserUpdateIn
from ledgergate.services.admin_schemas import ResetSpendIn

router = APIRouter(tags=["users"], responses=ERROR_RESPONSES)


@router.post("/user/new")
async def new_user(body: UserNewIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """Create a user; like LiteLLM, also issue them a personal key (``key`` in the response) unless
    ``auto_create_key`` is false. A proxy admin, granting only roles below its own."""
    return await commands(request).create_user(caller, body)


@router.post("/user/update")
async def update_user(body: UserUpdateIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """A proxy admin; a role changes only when the caller is stronger than both the old and the new role."""
    return await commands(request).update_user(caller, body)


@router.get("/user/info")
async def user_info(request: Request, caller: AnyCaller, user_id: QueryId = None) -> dict[str, Any]:
    """Any caller may read its own user (the calling key's ``user_id``); readers may read everyone."""
    wanted = user_id or caller.key.user_id
    if wanted is None:
        raise ApiError(
            400, "user_id: required (the calling key belongs to no user)", "invalid_request_error", "user_id"
        )
    if not caller.can_read_all and wanted != caller.key.user_id:
        raise forbidden("a non-admin key may only read its own user", "user_id")
    return await entity_admin(request).users.info(wanted, team_scope=caller.team_scope)


@router.post("/user/delete")
async def delete_users(body: UserDeleteIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """Delete users, their keys and their team memberships (LiteLLM semantics); their spend records stay.
    A proxy admin, for users whose role is below its own."""
    for user_id in body.user_ids:
        await require_user_change(request, caller, user_id, {}, deleting=True)
    return await entity_admin(request).users.delete(body.user_ids)


@router.get("/user/list")
async def list_users(
    request: Request,
    _: Reader,
    role: UserRole | None = None,
    user_ids: Annotated[str | None, Query(max_length=10_000, description="comma-separated")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 25,
) -> dict[str, Any]:
    admin = entity_admin(request)
    users = await admin.entities.list_all(EntityType.USER)
    if role is not None:
        users = [u for u in users if u.extra.get("user_role") == role]
    if user_ids:
        wanted = {part.strip() for part in user_ids.split(",") if part.strip()}
        users = [u for u in users if u.id in wanted]
    shown = users[(page - 1) * page_size : page * page_size]
    return {
        "users": [await admin.users.view(u) for u in shown],
        "total": len(users),
        "page": page,
        "page_size": page_size,
        "total_pages": max(1, math.ceil(len(users) / page_size)),
    }


@router.post("/user/{user_id}/reset_spend")
async def reset_user_spend(user_id: PathId, body: ResetSpendIn, request: Request, caller: Admin) -> dict[str, Any]:
    """Set the user's personal spend in one window (default: the primary) to ``reset_to``; proxy admin only."""
    return await commands(request).reset_spend(caller, EntityType.USER, user_id, body)
