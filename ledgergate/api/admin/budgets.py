"""/budget/* admin routes: shared budget objects, referenced by ``budget_id``.

A budget object is a limit, never charged itself: every entity that references it keeps its own spend against
its windows (see the entity's ``budget_limits``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ledgergate.api.admin.access import entity_admin
from ledgergate.api.admin.deps import ERROR_RESPONSES, Admin, Reader
from ledgergate.api.admin.params import QueryId
from ledgergate.api.errors import ApiError
from ledgergate.domain.charging import EntityType
from ledgergate.services.admin_entity_schemas import BudgetDeleteIn, BudgetInfoIn, BudgetNewIn, BudgetUpdateIn
from ledgergate.services.admin_schemas import provided
from ledgergate.services.entities import BUDGET

router = APIRouter(tags=["budgets"], responses=ERROR_RESPONSES)


@router.post("/budget/new")
async def new_budget(body: BudgetNewIn, request: Request, _: Admin) -> dict[str, Any]:
    admin = entity_admin(request)
    budget = await admin.entities.create(BUDGET, body.budget_id, provided(body, exclude={"budget_id"}))
    return await admin.entities.view(BUDGET, budget)


@router.post("/budget/update")
async def update_budget(body: BudgetUpdateIn, request: Request, _: Admin) -> dict[str, Any]:
    """Changes apply at once to every entity that references the budget."""
    admin = entity_admin(request)
    budget = await admin.entities.update(BUDGET, body.budget_id, provided(body, exclude={"budget_id"}))
    return await admin.entities.view(BUDGET, budget)


@router.get("/budget/info")
async def budget_info(request: Request, _: Reader, budget_id: QueryId = None) -> dict[str, Any]:
    if budget_id is None:
        raise ApiError(400, "budget_id: required", "invalid_request_error", "budget_id")
    admin = entity_admin(request)
    return await admin.entities.view(BUDGET, await admin.entities.get(BUDGET, budget_id))


@router.post("/budget/info")
async def budgets_info(body: BudgetInfoIn, request: Request, _: Reader) -> list[dict[str, Any]]:
    """LiteLLM's form: ``{"budgets": [...]}`` -> a list of budgets."""
    admin = entity_admin(request)
    budgets = [await admin.entities.get(BUDGET, budget_id) for budget_id in body.budgets]
    return [await admin.entities.view(BUDGET, b) for b in budgets]


@router.post("/budget/delete")
async def delete_budget(body: BudgetDeleteIn, request: Request, _: Admin) -> dict[str, Any]:
    """Refused (400, naming them) while any entity still references the budget."""
    budget_id = body.budget_id or body.id
    if budget_id is None:
        raise ApiError(400, "budget_id: required (or LiteLLM's 'id')", "invalid_request_error", "budget_id")
    return {"deleted_budgets": await entity_admin(request).entities.delete_unreferenced(BUDGET, [budget_id])}


@router.get("/budget/list")
async def list_budgets(request: Request, _: Reader) -> list[dict[str, Any]]:
    admin = entity_admin(request)
    return [await admin.entities.view(BUDGET, b) for b in await admin.entities.list_all(EntityType.BUDGET)]
