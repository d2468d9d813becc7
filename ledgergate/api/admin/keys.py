"""/key/* admin routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from ledgergate.api.admin.access import require_key_manager, require_team_manager
from ledgergate.api.admin.deps import ERROR_RESPONSES, Admin, AnyCaller
from ledgergate.api.admin.entity_schemas import QueryId
from ledgergate.api.admin.schemas import (
    KeyDeleteIn,
    KeyGenerateIn,
    KeyRefIn,
    KeyUpdateIn,
    ResetSpendIn,
    provided,
)
from ledgergate.api.errors import ApiError
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
    """A proxy admin, or a team admin for a key of their team (issued to no user or to a team member)."""
    await require_key_manager(request, caller, (body.team_id,), body.user_id, body.organization_id)
    result: dict[str, Any] = await _services(request).keys.generate(provided(body))
    return result


@router.post("/key/update")
async def update_key(body: KeyUpdateIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """A proxy admin, or a team admin for a key of their team that stays in their team."""
    if not caller.is_admin:
        current = await _services(request).keys.get(body.key)
        team_ids = (current.team_id, body.team_id) if "team_id" in body.model_fields_set else (current.team_id,)
        user_id = body.user_id if "user_id" in body.model_fields_set else current.user_id
        await require_key_manager(request, caller, team_ids, user_id, body.organization_id)
    result: dict[str, Any] = await _services(request).keys.update(body.key, provided(body, exclude={"key"}))
    return result


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
        user_id=user_id,
        team_id=team_id,
        alias=key_alias,
        offset=(page - 1) * size,
        limit=size,
    )
    items = [await services.keys.view(k) for k in keys] if return_full_object else [k.id for k in keys]
    return {"keys": items, "current_page": page, "size": size}


@router.post("/key/delete")
async def delete_keys(body: KeyDeleteIn, request: Request, _: Admin) -> dict[str, Any]:
    return {"deleted_keys": await _services(request).keys.delete(body.keys)}


@router.post("/key/block")
async def block_key(body: KeyRefIn, request: Request, _: Admin) -> dict[str, Any]:
    result: dict[str, Any] = await _services(request).keys.set_blocked(body.key, True)
    return result


@router.post("/key/unblock")
async def unblock_key(body: KeyRefIn, request: Request, _: Admin) -> dict[str, Any]:
    result: dict[str, Any] = await _services(request).keys.set_blocked(body.key, False)
    return result


@router.post("/key/{key}/reset_spend")
async def reset_key_spend(key: KeyPath, body: ResetSpendIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    services = _services(request)
    entity = await services.keys.get(key)
    await require_team_manager(request, caller, entity.team_id, "reset this key's spend")
    result: dict[str, Any] = await services.resets.reset(
        entity, body.reset_to, body.budget_duration, caller.actor, body.reason or "", model=body.model
    )
    result["key"] = key
    return result
