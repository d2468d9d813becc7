"""/customer/* admin routes: end users, named by the ``user`` field of LLM requests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ledgergate.api.admin.access import commands, entity_admin
from ledgergate.api.admin.deps import ERROR_RESPONSES, Admin, Reader
from ledgergate.api.admin.params import PathId, QueryId
from ledgergate.api.errors import ApiError
from ledgergate.domain.charging import EntityType
from ledgergate.services.admin_entity_schemas import CustomerIdsIn, CustomerIn
from ledgergate.services.admin_schemas import ResetSpendIn, provided
from ledgergate.services.entities import CUSTOMER

router = APIRouter(tags=["customers"], responses=ERROR_RESPONSES)


@router.post("/customer/new")
async def new_customer(body: CustomerIn, request: Request, _: Admin) -> dict[str, Any]:
    admin = entity_admin(request)
    customer = await admin.entities.create(CUSTOMER, body.user_id, provided(body, exclude={"user_id"}))
    return await admin.entities.view(CUSTOMER, customer)


@router.post("/customer/update")
async def update_customer(body: CustomerIn, request: Request, _: Admin) -> dict[str, Any]:
    admin = entity_admin(request)
    customer = await admin.entities.update(CUSTOMER, body.user_id, provided(body, exclude={"user_id"}))
    return await admin.entities.view(CUSTOMER, customer)


@router.get("/customer/info")
async def customer_info(request: Request, _: Reader, end_user_id: QueryId = None) -> dict[str, Any]:
    if end_user_id is None:
        raise ApiError(400, "end_user_id: required", "invalid_request_error", "end_user_id")
    admin = entity_admin(request)
    return await admin.entities.view(CUSTOMER, await admin.entities.get(CUSTOMER, end_user_id))


@router.post("/customer/delete")
async def delete_customers(body: CustomerIdsIn, request: Request, _: Admin) -> dict[str, Any]:
    return {"deleted_customers": await entity_admin(request).entities.delete(CUSTOMER, body.user_ids)}


@router.get("/customer/list")
async def list_customers(request: Request, _: Reader) -> list[dict[str, Any]]:
    admin = entity_admin(request)
    return [await admin.entities.view(CUSTOMER, c) for c in await admin.entities.list_all(EntityType.CUSTOMER)]


async def _set_blocked(request: Request, user_ids: list[str], blocked: bool) -> dict[str, Any]:
    admin = entity_admin(request)
    for user_id in user_ids:  # all or nothing
        await admin.entities.get(CUSTOMER, user_id)
    for user_id in user_ids:
        await admin.entities.update(CUSTOMER, user_id, {"blocked": blocked})
    return {"blocked_users" if blocked else "unblocked_users": user_ids}


@router.post("/customer/block")
async def block_customers(body: CustomerIdsIn, request: Request, _: Admin) -> dict[str, Any]:
    """A blocked customer's requests are refused (403), whatever key they come through."""
    return await _set_blocked(request, body.user_ids, True)


@router.post("/customer/unblock")
async def unblock_customers(body: CustomerIdsIn, request: Request, _: Admin) -> dict[str, Any]:
    return await _set_blocked(request, body.user_ids, False)


@router.post("/customer/{customer_id}/reset_spend")
async def reset_customer_spend(
    customer_id: PathId, body: ResetSpendIn, request: Request, caller: Admin
) -> dict[str, Any]:
    return await commands(request).reset_spend(caller, EntityType.CUSTOMER, customer_id, body)
