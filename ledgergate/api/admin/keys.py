"""/key/* admin routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from ledgergate.api.admin.access import commands, guard
from ledgergate.api.admin.deps import ERROR_RESPONSES, AnyCaller
from ledgergate.api.admin.params import QueryId
from ledgergate.api.errors import ApiError
from ledgergate.domain.charging import EntityType
from ledgergate.services.admin_schemas import (
    KeyDeleteIn,
    KeyGenerateIn,
    KeyRefIn,
    KeyUpdateIn,
    ResetSpendIn,
)
from ledgergate.services.authorization import Action
from ledgergate.services.key_listing import visible_keys
from ledgergate.services.keys import key_id_of

router = APIRouter(tags=["keys"], responses=ERROR_RESPONSES)
# A secret or a token: bounded and free of control characters, which PostgreSQL would refuse (a 5xx otherwise).
_KEY_TEXT = r"^[^\x00-\x1f\x7f]*$"
KeyParam = Annotated[str | None, Query(max_length=1000, pattern=_KEY_TEXT, description="the key's secret or token")]
KeyPath = Annotated[str, Path(max_length=1000, pattern=_KEY_TEXT, description="the key's secret or token")]


def _services(request: Request) -> Any:
    return request.app.state.container


@router.post("/key/generate")
async def generate_key(body: KeyGenerateIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """A proxy admin, or a team admin for a key of their team (see docs/security.md#roles-and-authorization)."""
    return await commands(request).generate_key(caller, body)


@router.post("/key/update")
async def update_key(body: KeyUpdateIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """A proxy admin, or a team admin for a key of their team that stays in their team."""
    return await commands(request).update_key(caller, body)


@router.get("/key/info")
async def key_info(request: Request, caller: AnyCaller, key: KeyParam = None) -> dict[str, Any]:
    services = _services(request)
    wanted = key_id_of(key) if key else caller.key.id
    if not caller.can_read_all and wanted != caller.key.id:
        raise ApiError(403, "a non-admin key may only read its own info", "permission_error", "key")
    entity = await services.keys.get(wanted)
    return {"key": key or caller.key.id, "info": await services.keys.view(entity)}


@router.get("/key/list")
async def list_keys(
    request: Request,
    caller: AnyCaller,
    user_id: QueryId = None,
    team_id: QueryId = None,
    key_alias: QueryId = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=1000)] = 100,
    return_full_object: bool = False,
) -> dict[str, Any]:
    services = _services(request)
    keys = await visible_keys(
        services.store,
        caller.key,
        caller.can_read_all,
        team_scope=caller.team_scope,
        user_id=user_id,
        team_id=team_id,
        alias=key_alias,
        offset=(page - 1) * size,
        limit=size,
    )
    items = [await services.keys.view(k) for k in keys] if return_full_object else [k.id for k in keys]
    return {"keys": items, "current_page": page, "size": size}


@router.post("/key/delete")
async def delete_keys(body: KeyDeleteIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """A proxy admin, or a team admin for keys of their team; all or nothing."""
    keys = _services(request).keys
    for key in body.keys:
        current = await keys.get(key)
        await guard(request).require_key_change(caller, Action.KEY_DELETE, current, current)
    return {"deleted_keys": await keys.delete(body.keys)}


@router.post("/key/block")
async def block_key(body: KeyRefIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """A proxy admin, or a team admin for a key of their team."""
    return await commands(request).set_key_blocked(caller, body.key, True)


@router.post("/key/unblock")
async def unblock_key(body: KeyRefIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """A proxy admin; a team admin only for a key of their team that a team admin blocked."""
    return await commands(request).set_key_blocked(caller, body.key, False)


@router.post("/key/{key}/reset_spend")
async def reset_key_spend(key: KeyPath, body: ResetSpendIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    return await commands(request).reset_spend(caller, EntityType.KEY, key, body)
