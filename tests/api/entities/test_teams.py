"""Team members (``member_add``/``member_update``/``member_delete``), team admins' powers, blocking, and what
deleting a team or a user takes with it."""

from __future__ import annotations

import httpx

from tests.api.entities.helpers import (
    ONE_REQUEST,
    add_member,
    chat,
    client_of,
    error_of,
    get,
    new_key,
    new_team,
    new_user,
    post,
    uid,
)
from tests.support.gateway import GatewayServer


def _members(info: dict[str, object]) -> list[tuple[object, object]]:
    team_info = info["team_info"]
    assert isinstance(team_info, dict)
    return [(m["user_id"], m["role"]) for m in team_info["members_with_roles"]]


async def test_teams_member_add_creates_unknown_users_and_refuses_duplicates(admin: httpx.AsyncClient) -> None:
    """``member`` may be one member or a list; an unknown user_id or email becomes a new internal user (as in
    LiteLLM); adding a member twice is a 409 and changes nothing."""
    team = await new_team(admin)
    known = await new_user(admin, user_email="known@example.com")
    fresh_id = uid("fresh")
    added = await post(
        admin,
        "/team/member_add",
        {
            "team_id": team["team_id"],
            "member": [{"user_id": fresh_id, "role": "admin"}, {"user_email": "known@example.com"}],
            "max_budget_in_team": 2,
        },
    )
    assert [(m["user_id"], m["role"]) for m in added["members_with_roles"]] == [
        (fresh_id, "admin"),
        (known["user_id"], "user"),
    ]
    assert sorted(m["max_budget_in_team"] for m in added["updated_team_memberships"]) == [2, 2]
    assert (await get(admin, "/user/info", user_id=fresh_id))["user_info"]["user_role"] == "internal_user"
    duplicate = {"team_id": team["team_id"], "member": {"user_id": known["user_id"]}}
    error_of(await admin.post("/team/member_add", json=duplicate), 409, "member")
    assert len(_members(await get(admin, "/team/info", team_id=team["team_id"]))) == 2
    error_of(await admin.post("/team/member_add", json={**duplicate, "team_id": "no-such-team"}), 404, "team_id")
    error_of(await admin.post("/team/member_add", json={"team_id": team["team_id"], "member": {}}), 400)
    twice = [{"user_id": fresh_id}, {"user_id": fresh_id}]
    team_id = uid("team")
    error_of(await admin.post("/team/new", json={"team_id": team_id, "members_with_roles": twice}), 400)
    error_of(await admin.get("/team/info", params={"team_id": team_id}), 404)


async def test_teams_member_update_and_delete(admin: httpx.AsyncClient) -> None:
    """``member_update`` changes role and budget in both records; ``member_delete`` removes the member from the
    team and its memberships; a non-member is a 404."""
    team = await new_team(admin)
    user = await new_user(admin)
    await add_member(admin, team["team_id"], user["user_id"])
    updated = await post(
        admin,
        "/team/member_update",
        {"team_id": team["team_id"], "user_id": user["user_id"], "role": "admin", "max_budget_in_team": 3},
    )
    assert (updated["role"], updated["max_budget_in_team"], updated["budget_duration"]) == ("admin", 3, None)
    info = await get(admin, "/team/info", team_id=team["team_id"])
    assert _members(info) == [(user["user_id"], "admin")]
    assert [(m["role"], m["max_budget_in_team"]) for m in info["team_memberships"]] == [("admin", 3)]
    bad = {"team_id": team["team_id"], "user_id": user["user_id"], "max_budget_in_team": -1}
    error_of(await admin.post("/team/member_update", json=bad), 400, "max_budget_in_team")
    await post(admin, "/team/member_delete", {"team_id": team["team_id"], "user_id": user["user_id"]})
    info = await get(admin, "/team/info", team_id=team["team_id"])
    assert _members(info) == [] and info["team_memberships"] == []
    gone = {"team_id": team["team_id"], "user_id": user["user_id"]}
    error_of(await admin.post("/team/member_delete", json=gone), 404, "user_id")
    error_of(await admin.post("/team/member_update", json={**gone, "role": "user"}), 404, "user_id")


async def test_teams_team_admin_manages_members_and_keys_of_their_team_only(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A team admin adds members and issues/updates keys for their team; another team, a key for a non-member
    user, or moving a key out of the team is a 403."""
    team, other = await new_team(admin), await new_team(admin)
    lead, outsider = await new_user(admin), await new_user(admin)
    await add_member(admin, team["team_id"], lead["user_id"], "admin")
    async with client_of(gateway, lead["key"]) as client:
        member_id = uid("member")
        response = await client.post(
            "/team/member_add", json={"team_id": team["team_id"], "member": {"user_id": member_id}}
        )
        assert response.status_code == 200, response.text
        error_of(await client.post("/team/member_add", json={"team_id": other["team_id"], "member": {}}), 403)
        response = await client.post("/key/generate", json={"team_id": team["team_id"], "user_id": member_id})
        assert response.status_code == 200, response.text
        key = response.json()
        response = await client.post("/key/update", json={"key": key["token"], "max_budget": 1})
        assert response.status_code == 200, response.text
        error_of(await client.post("/key/update", json={"key": key["token"], "team_id": other["team_id"]}), 403)
        error_of(await client.post("/key/generate", json={"team_id": other["team_id"]}), 403)
        error_of(await client.post("/key/generate", json={}), 403)
        bad_user = {"team_id": team["team_id"], "user_id": outsider["user_id"]}
        error_of(await client.post("/key/generate", json=bad_user), 403, "user_id")
        with_org = {"team_id": team["team_id"], "organization_id": "any-org"}
        error_of(await client.post("/key/generate", json=with_org), 403, "organization_id")
        error_of(await client.post("/team/update", json={"team_id": team["team_id"], "max_budget": 1}), 403)
        assert (await client.get("/team/info", params={"team_id": team["team_id"]})).status_code == 200
        error_of(await client.get("/team/info", params={"team_id": other["team_id"]}), 403)
        listed = await client.get("/team/list")
        assert [t["team_id"] for t in listed.json()] == [team["team_id"]]


async def test_teams_blocked_team_and_customer_are_refused(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """A blocked team's keys and a blocked customer's requests get a 403; unblocking restores them."""
    team = await new_team(admin)
    key = await new_key(admin, team_id=team["team_id"])
    await post(admin, "/team/block", {"team_id": team["team_id"]})
    assert (await chat(gateway, key["key"])).status_code == 403
    await post(admin, "/team/unblock", {"team_id": team["team_id"]})
    assert (await chat(gateway, key["key"])).status_code == 200
    customer = uid("customer")
    await post(admin, "/customer/new", {"user_id": customer, "blocked": True})
    assert (await chat(gateway, key["key"], user=customer)).status_code == 403
    await post(admin, "/customer/unblock", {"user_ids": [customer]})
    assert (await chat(gateway, key["key"], user=customer)).status_code == 200
    await post(admin, "/customer/block", {"user_ids": [customer]})
    assert (await get(admin, "/customer/info", end_user_id=customer))["blocked"] is True


async def test_teams_delete_takes_its_keys_and_members_but_not_its_spend_history(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Deleting a team deletes its keys (they stop working: 401) and members, as LiteLLM does; the ledger keeps
    the team's spend records. A list with one unknown id deletes nothing (404)."""
    team = await new_team(admin)
    user = await new_user(admin)
    await add_member(admin, team["team_id"], user["user_id"])
    key = await new_key(admin, team_id=team["team_id"], user_id=user["user_id"])
    assert (await chat(gateway, key["key"])).status_code == 200
    error_of(await admin.post("/team/delete", json={"team_ids": [team["team_id"], "no-such-team"]}), 404)
    assert (await chat(gateway, key["key"])).status_code == 200
    deleted = await post(admin, "/team/delete", {"team_ids": [team["team_id"]]})
    assert deleted == {"deleted_teams": [team["team_id"]], "deleted_keys": [key["token"]]}
    assert (await chat(gateway, key["key"])).status_code == 401
    assert (await get(admin, "/user/info", user_id=user["user_id"]))["teams"] == []
    logs = await get(admin, "/spend/logs", team_id=team["team_id"])
    assert len(logs) == 2 and sum(row["spend"] for row in logs) == 2 * ONE_REQUEST


async def test_teams_user_delete_takes_their_keys_and_memberships(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Deleting a user deletes their keys and removes them from every team."""
    team = await new_team(admin)
    user = await new_user(admin)
    await add_member(admin, team["team_id"], user["user_id"], "admin")
    deleted = await post(admin, "/user/delete", {"user_ids": [user["user_id"]]})
    assert deleted["deleted_keys"] == [user["token"]]
    assert (await chat(gateway, user["key"])).status_code == 401
    info = await get(admin, "/team/info", team_id=team["team_id"])
    assert _members(info) == [] and info["team_memberships"] == []
