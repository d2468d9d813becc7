"""/tag/* admin routes. A tag's budget applies to every request carrying it (key, team or allowed client tags)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from ledgergate.api.admin.access import commands, entity_admin
from ledgergate.api.admin.deps import ERROR_RESPONSES, Admin, Reader
from ledgergate.api.admin.params import QueryId
from ledgergate.api.errors import ApiError
from ledgergate.domain.charging import EntityType
from ledgergate.services.admin_entity_schemas import TagDeleteIn, TagIn, TagInfoIn
from ledgergate.services.admin_schemas import ResetSpendIn
from ledgergate.services.entities import TAG

router = APIRouter(tags=["tags"], responses=ERROR_RESPONSES)
# Tag names may contain "/" (e.g. "tenant/acme"), hence the path converter.
TagName = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]


@router.post("/tag/new")
async def new_tag(body: TagIn, request: Request, caller: Admin) -> dict[str, Any]:
    return await commands(request).create_tag(caller, body)


@router.post("/tag/update")
async def update_tag(body: TagIn, request: Request, caller: Admin) -> dict[str, Any]:
    return await commands(request).update_tag(caller, body)


@router.get("/tag/info")
async def tag_info(request: Request, _: Reader, name: QueryId = None) -> dict[str, Any]:
    if name is None:
        raise ApiError(400, "name: required", "invalid_request_error", "name")
    admin = entity_admin(request)
    return await admin.entities.view(TAG, await admin.entities.get(TAG, name))


@router.post("/tag/info")
async def tags_info(body: TagInfoIn, request: Request, _: Reader) -> dict[str, Any]:
    """LiteLLM's form: ``{"names": [...]}`` -> ``{name: tag}``."""
    admin = entity_admin(request)
    tags = [await admin.entities.get(TAG, name) for name in body.names]
    return {tag.id: await admin.entities.view(TAG, tag) for tag in tags}


@router.post("/tag/delete")
async def delete_tag(body: TagDeleteIn, request: Request, _: Admin) -> dict[str, Any]:
    """Keys keep the tag in their list; without its entity the tag simply has no budget."""
    await entity_admin(request).entities.delete(TAG, [body.name])
    return {"deleted_tags": [body.name]}


@router.get("/tag/list")
async def list_tags(request: Request, _: Reader) -> list[dict[str, Any]]:
    admin = entity_admin(request)
    return [await admin.entities.view(TAG, t) for t in await admin.entities.list_all(EntityType.TAG)]


@router.post("/tag/{name:path}/reset_spend")
async def reset_tag_spend(name: TagName, body: ResetSpendIn, request: Request, caller: Admin) -> dict[str, Any]:
    return await commands(request).reset_spend(caller, EntityType.TAG, name, body)
