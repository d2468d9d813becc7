"""Seed 004: a team key never charges or checks its user's personal budget; the user's personal keys are
checked against it independently (LiteLLM bug: team key spend leaked into the user's personal spend)."""

from __future__ import annotations

import httpx

from tests.api.entities.helpers import (
    ONE_REQUEST,
    PLENTY,
    add_member,
    chat,
    clear_of_boundary,
    get,
    new_key,
    new_team,
    new_user,
    refused_by,
)
from tests.support.gateway import GatewayServer


async def test_seed_004_team_key_spend_never_reaches_the_personal_budget(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Three team-key requests leave the user's personal window untouched (0 spent, lifetime 0): their personal
    key still gets exactly its one request, then is refused by the personal window, while the team key goes on."""
    await clear_of_boundary(86400)
    user = await new_user(admin, max_budget=ONE_REQUEST, budget_duration="1d")
    team = await new_team(admin, max_budget=PLENTY, budget_duration="1d")
    await add_member(admin, team["team_id"], user["user_id"], max_budget_in_team=PLENTY)
    team_key = await new_key(admin, team_id=team["team_id"], user_id=user["user_id"])
    for _ in range(3):
        assert (await chat(gateway, team_key["key"])).status_code == 200
    personal = (await get(admin, "/user/info", user_id=user["user_id"]))["user_info"]
    assert (personal["spend"], personal["lifetime_spend"]) == (0, 0)

    assert (await chat(gateway, user["key"])).status_code == 200
    assert refused_by(await chat(gateway, user["key"])) == ("user", user["user_id"], "1d")
    assert (await chat(gateway, team_key["key"])).status_code == 200

    team_info = await get(admin, "/team/info", team_id=team["team_id"])
    assert team_info["team_info"]["spend"] == 4 * ONE_REQUEST
    (membership,) = team_info["team_memberships"]
    assert (membership["user_id"], membership["spend"], membership["max_budget_in_team"]) == (
        user["user_id"],
        4 * ONE_REQUEST,
        PLENTY,
    )
    personal = (await get(admin, "/user/info", user_id=user["user_id"]))["user_info"]
    assert (personal["spend"], personal["lifetime_spend"]) == (ONE_REQUEST, ONE_REQUEST)


async def test_seed_004_member_budget_in_team_limits_only_that_members_team_keys(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """``max_budget_in_team`` refuses the member's team keys (entity ``team_member``); another member of the same
    team and the member's personal key are unaffected."""
    await clear_of_boundary(86400)
    team = await new_team(admin)
    capped, free = await new_user(admin), await new_user(admin)
    await add_member(admin, team["team_id"], capped["user_id"])
    await add_member(admin, team["team_id"], free["user_id"])
    update = {"team_id": team["team_id"], "user_id": capped["user_id"], "max_budget_in_team": ONE_REQUEST}
    response = await admin.post("/team/member_update", json={**update, "budget_duration": "1d"})
    assert response.status_code == 200, response.text
    assert (response.json()["max_budget_in_team"], response.json()["budget_duration"]) == (ONE_REQUEST, "1d")
    capped_key = await new_key(admin, team_id=team["team_id"], user_id=capped["user_id"])
    free_key = await new_key(admin, team_id=team["team_id"], user_id=free["user_id"])
    assert (await chat(gateway, capped_key["key"])).status_code == 200
    member_id = f"{team['team_id']}/{capped['user_id']}"
    assert refused_by(await chat(gateway, capped_key["key"])) == ("team_member", member_id, "1d")
    assert (await chat(gateway, free_key["key"])).status_code == 200
    assert (await chat(gateway, capped["key"])).status_code == 200
