"""/team/* admin routes: teams, their members (with ``max_budget_in_team``) and their spend."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ledgergate.api.admin.access import commands, entity_admin, require_member_change, require_team
from ledgergate.api.admin.deps import ERROR_RESPONSES, Admin, AnyCaller
from ledgergate.api.admin.params import PathId, QueryId
from ledgergate.api.errors import ApiError
from ledgergate.domain.charging import EntityType
from ledgergate.domain.memberships import role_in_team
from ledgergate.services.admin_entity_schemas import (
    MemberAddIn,
    MemberDeleteIn,
    MemberUpdateIn,
    TeamDeleteIn,
    TeamNewIn,
    TeamRefIn,
    TeamUpdateIn,
)
from ledgergate.services.admin_schemas import ResetSpendIn, provided
from ledgergate.services.authorization import Action
from ledgergate.services.entities import TEAM

router = APIRouter(tags=["teams"], responses=ERROR_RESPONSES)


@router.post("/team/new")
async def new_team(body: TeamNewIn, request: Request, caller: Admin) -> dict[str, Any]:
    return await commands(request).create_team(caller, body)


@router.post("/team/update")
async def update_team(body: TeamUpdateIn, request: Request, caller: Admin) -> dict[str, Any]:
    return await commands(request).update_team(caller, body)


@router.get("/team/info")
async def team_info(request: Request, caller: AnyCaller, team_id: QueryId = None) -> dict[str, Any]:
    """Readers see every team; other callers only the teams their user belongs to."""
    if team_id is None:
        raise ApiError(400, "team_id: required", "invalid_request_error", "team_id")
    admin = entity_admin(request)
    await require_team(request, caller, Action.TEAM_READ, team_id)
    return await admin.teams.info(await admin.entities.get(TEAM, team_id))


@router.post("/team/delete")
async def delete_teams(body: TeamDeleteIn, request: Request, _: Admin) -> dict[str, Any]:
    """Delete teams with their keys and members (LiteLLM semantics); their spend records stay."""
    return await entity_admin(request).teams.delete(body.team_ids)


@router.get("/team/list")
async def list_teams(
    request: Request, caller: AnyCaller, organization_id: QueryId = None, user_id: QueryId = None
) -> list[dict[str, Any]]:
    """Readers list every team; other callers the teams their own user belongs to."""
    admin = entity_admin(request)
    if not caller.can_read_all:
        user_id = caller.key.user_id
        if user_id is None:
            return []
    if user_id is not None:
        teams = await admin.teams.teams_of(user_id)
        if caller.team_scope is not None and not caller.can_read_all:  # a capped key sees its own team only
            teams = [t for t in teams if t.id == caller.team_scope]
        if organization_id is not None:
            teams = [t for t in teams if t.organization_id == organization_id]
    else:
        teams = await admin.entities.list_all(EntityType.TEAM, organization_id=organization_id)
    return [await admin.entities.view(TEAM, team) for team in teams]


@router.post("/team/block")
async def block_team(body: TeamRefIn, request: Request, caller: Admin) -> dict[str, Any]:
    """A blocked team's keys are refused (403) until it is unblocked."""
    return await commands(request).set_team_blocked(caller, body.team_id, True)


@router.post("/team/unblock")
async def unblock_team(body: TeamRefIn, request: Request, caller: Admin) -> dict[str, Any]:
    return await commands(request).set_team_blocked(caller, body.team_id, False)


@router.post("/team/member_add")
async def add_members(body: MemberAddIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """Add members (unknown users are created, as LiteLLM does); a proxy admin or a team admin."""
    members = body.member if isinstance(body.member, list) else [body.member]
    if not members:
        raise ApiError(400, "member: at least one member is required", "invalid_request_error", "member")
    for member in members:
        await require_member_change(request, caller, body.team_id, member.model_dump(), member.role)
    return await entity_admin(request).teams.add_members(
        body.team_id, [m.model_dump() for m in members], body.max_budget_in_team
    )


@router.post("/team/member_update")
async def update_member(body: MemberUpdateIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """Change a member's role and/or ``max_budget_in_team`` (over ``budget_duration`` when given)."""
    selector = {"user_id": body.user_id, "user_email": body.user_email}
    team = await entity_admin(request).entities.get(TEAM, body.team_id)
    user = await entity_admin(request).teams.existing_user(selector)
    role_after = body.role or (role_in_team(team, user.id) if user is not None else None) or "user"
    await require_member_change(request, caller, body.team_id, selector, role_after)
    fields = provided(body, exclude={"team_id", "user_id", "user_email"})
    return await entity_admin(request).teams.update_member(body.team_id, selector, fields)


@router.post("/team/member_delete")
async def delete_member(body: MemberDeleteIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    selector = {"user_id": body.user_id, "user_email": body.user_email}
    await require_member_change(request, caller, body.team_id, selector, None)
    return await entity_admin(request).teams.remove_member(body.team_id, selector)


@router.post("/team/{team_id}/reset_spend")
async def reset_team_spend(team_id: PathId, body: ResetSpendIn, request: Request, caller: AnyCaller) -> dict[str, Any]:
    """Set the team's spend in one window to ``reset_to``; a proxy admin only."""
    return await commands(request).reset_spend(caller, EntityType.TEAM, team_id, body)
