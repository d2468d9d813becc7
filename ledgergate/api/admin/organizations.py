"""/organization/* admin routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ledgergate.api.admin.access import commands, entity_admin
from ledgergate.api.admin.deps import ERROR_RESPONSES, Admin, Reader
from ledgergate.api.admin.params import PathId, QueryId
from ledgergate.api.errors import ApiError
from ledgergate.domain.charging import EntityType
from ledgergate.services.admin_entity_schemas import (
    OrganizationDeleteIn,
    OrganizationNewIn,
    OrganizationUpdateIn,
)
from ledgergate.services.admin_schemas import ResetSpendIn, provided
from ledgergate.services.entities import ORGANIZATION, TEAM

router = APIRouter(tags=["organizations"], responses=ERROR_RESPONSES)


@router.post("/organization/new")
async def new_organization(body: OrganizationNewIn, request: Request, _: Admin) -> dict[str, Any]:
    admin = entity_admin(request)
    organization = await admin.entities.create(
        ORGANIZATION, body.organization_id, provided(body, exclude={"organization_id"})
    )
    return await admin.entities.view(ORGANIZATION, organization)


async def update_organization(body: OrganizationUpdateIn, request: Request, _: Admin) -> dict[str, Any]:
    admin = entity_admin(request)
    organization = await admin.entities.update(
        ORGANIZATION, body.organization_id, provided(body, exclude={"organization_id"})
    )
    return await admin.entities.view(ORGANIZATION, organization)


# LiteLLM serves this as PATCH; POST is accepted too, like every other update route here.
for _method in ("PATCH", "POST"):
    router.add_api_route(
        "/organization/update",
        update_organization,
        methods=[_method],
        operation_id=f"update_organization_{_method.lower()}",
    )


@router.get("/organization/info")
async def organization_info(request: Request, _: Reader, organization_id: QueryId = None) -> dict[str, Any]:
    """The organization with its teams."""
    if organization_id is None:
        raise ApiError(400, "organization_id: required", "invalid_request_error", "organization_id")
    admin = entity_admin(request)
    organization = await admin.entities.get(ORGANIZATION, organization_id)
    teams = await admin.entities.list_all(EntityType.TEAM, organization_id=organization_id)
    view = await admin.entities.view(ORGANIZATION, organization)
    view["teams"] = [await admin.entities.view(TEAM, team) for team in teams]
    return view


@router.post("/organization/delete")
async def delete_organizations(body: OrganizationDeleteIn, request: Request, _: Admin) -> dict[str, Any]:
    """Refused (400, naming them) while teams or keys still belong to an organization."""
    deleted = await entity_admin(request).entities.delete_unreferenced(ORGANIZATION, body.organization_ids)
    return {"deleted_organizations": deleted}


@router.get("/organization/list")
async def list_organizations(request: Request, _: Reader) -> list[dict[str, Any]]:
    admin = entity_admin(request)
    organizations = await admin.entities.list_all(EntityType.ORGANIZATION)
    return [await admin.entities.view(ORGANIZATION, o) for o in organizations]


@router.post("/organization/{organization_id}/reset_spend")
async def reset_organization_spend(
    organization_id: PathId, body: ResetSpendIn, request: Request, caller: Admin
) -> dict[str, Any]:
    return await commands(request).reset_spend(caller, EntityType.ORGANIZATION, organization_id, body)
