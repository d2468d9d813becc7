"""Issue 12 (privilege escalation), each reproduced hole as a regression test over the real admin HTTP API.

Every attack is made by the admin of team A (an internal user with member role ``admin``): the holes were all
routes a team admin could use to end up with a role, a team or a scope nobody holding it gave them.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tests.api.entities.helpers import (
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
from tests.support.gateway import CHAT_MODEL, FLAT_MODEL, GatewayServer


@dataclass
class Setup:
    team: str
    other_team: str
    lead: str  # team A's admin (user id)
    lead_secret: str
    other_lead: str  # team B's admin
    root: str  # a proxy admin user


async def _setup(admin: httpx.AsyncClient) -> Setup:
    team, other_team = (await new_team(admin))["team_id"], (await new_team(admin))["team_id"]
    lead, other_lead = await new_user(admin), await new_user(admin, auto_create_key=False)
    root = await new_user(admin, user_role="proxy_admin", auto_create_key=False)
    await add_member(admin, team, lead["user_id"], "admin")
    await add_member(admin, other_team, other_lead["user_id"], "admin")
    return Setup(team, other_team, lead["user_id"], lead["key"], other_lead["user_id"], root["user_id"])


async def _keys_of(admin: httpx.AsyncClient, user_id: str) -> list[str]:
    keys: list[str] = (await get(admin, "/key/list", user_id=user_id))["keys"]
    return keys


async def test_team_admin_cannot_issue_a_key_as_a_proxy_admin_via_member_add_and_key_generate(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Bug: member_add any user, then /key/generate {team_id, user_id} gave a proxy-admin key. Both steps: 403."""
    s = await _setup(admin)
    async with client_of(gateway, s.lead_secret) as lead:
        member = {"team_id": s.team, "member": {"user_id": s.root}}
        error_of(await lead.post("/team/member_add", json=member), 403, "user_id")
        await add_member(admin, s.team, s.root)  # even when a proxy admin made them a plain member
        response = await lead.post("/key/generate", json={"team_id": s.team, "user_id": s.root})
        error_of(response, 403, "user_id")
    assert await _keys_of(admin, s.root) == []


async def test_team_admin_cannot_take_control_of_another_team_by_adding_its_admin(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Bug: adding team B's admin to team A, then issuing a key as them, gave control of team B."""
    s = await _setup(admin)
    plain_elsewhere = (await new_user(admin, auto_create_key=False))["user_id"]
    await add_member(admin, s.other_team, plain_elsewhere)
    async with client_of(gateway, s.lead_secret) as lead:
        for user_id in (s.other_lead, plain_elsewhere):
            response = await lead.post("/team/member_add", json={"team_id": s.team, "member": {"user_id": user_id}})
            error_of(response, 403, "user_id")
        await add_member(admin, s.team, s.other_lead)  # a proxy admin's doing: still no key as them
        error_of(await lead.post("/key/generate", json={"team_id": s.team, "user_id": s.other_lead}), 403, "user_id")
    assert await _keys_of(admin, s.other_lead) == []


async def test_team_admin_may_add_a_teamless_internal_user_and_issue_them_a_key(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """The decided team-admin power: a new user, or an existing internal user in no team, joins as a plain member
    and may get a team key; promoting anyone to team admin is a proxy admin's call."""
    s = await _setup(admin)
    loner = (await new_user(admin, auto_create_key=False))["user_id"]
    async with client_of(gateway, s.lead_secret) as lead:
        for user_id in (loner, uid("fresh")):
            response = await lead.post("/team/member_add", json={"team_id": s.team, "member": {"user_id": user_id}})
            assert response.status_code == 200, response.text
        key = await lead.post("/key/generate", json={"team_id": s.team, "user_id": loner})
        assert key.status_code == 200, key.text
        promote = {"team_id": s.team, "user_id": loner, "role": "admin"}
        error_of(await lead.post("/team/member_update", json=promote), 403, "role")
        admin_member = {"team_id": s.team, "member": {"user_id": uid("fresh"), "role": "admin"}}
        error_of(await lead.post("/team/member_add", json=admin_member), 403, "role")
    assert (await chat(gateway, key.json()["key"])).status_code == 200


async def test_team_admin_cannot_rebind_a_key_to_a_proxy_admin_via_key_update_user_id(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Bug: /key/update {user_id} rebound a team key to any user, a proxy admin included."""
    s = await _setup(admin)
    await add_member(admin, s.team, s.root)
    async with client_of(gateway, s.lead_secret) as lead:
        key = (await lead.post("/key/generate", json={"team_id": s.team})).json()
        for user_id in (s.root, s.other_lead):
            response = await lead.post("/key/update", json={"key": key["token"], "user_id": user_id})
            error_of(response, 403, "user_id")
    info = await get(admin, "/key/info", key=key["token"])
    assert info["info"]["user_id"] == s.lead  # a team admin's key without a user_id is bound to them


async def test_user_update_self_promotion_is_refused_and_roles_move_only_below_the_writer(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Bug: with a key acting as a proxy admin, /user/update promoted its own user. Roles now only move below the
    writer's own role: a team admin or internal user writes no user, a proxy admin makes no proxy admin; the
    master key may."""
    s = await _setup(admin)
    deputy = await new_user(admin, user_role="proxy_admin")
    async with client_of(gateway, s.lead_secret) as lead:
        response = await lead.post("/user/update", json={"user_id": s.lead, "user_role": "proxy_admin"})
        error_of(response, 403)
    async with client_of(gateway, deputy["key"]) as proxy_admin:
        for body in (
            {"user_id": s.lead, "user_role": "proxy_admin"},
            {"user_id": s.root, "user_role": "internal_user"},  # demoting an equal
        ):
            error_of(await proxy_admin.post("/user/update", json=body), 403, "user_role")
        error_of(await proxy_admin.post("/user/new", json={"user_id": uid("u"), "user_role": "proxy_admin"}), 403)
        error_of(await proxy_admin.post("/user/delete", json={"user_ids": [s.root]}), 403, "user_role")
        viewer = {"user_id": s.lead, "user_role": "proxy_admin_viewer"}
        assert (await proxy_admin.post("/user/update", json=viewer)).status_code == 200
    assert (await get(admin, "/user/info", user_id=s.lead))["user_info"]["user_role"] == "proxy_admin_viewer"
    await post(admin, "/user/update", {"user_id": s.lead, "user_role": "proxy_admin"})  # the master key may


async def test_team_admin_cannot_lift_a_proxy_admin_block_via_key_update_blocked_false(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Bug: /key/update {"blocked": false} was 200 for a team admin while /key/unblock was 403."""
    s = await _setup(admin)
    key = await new_key(admin, team_id=s.team)
    await post(admin, "/key/block", {"key": key["token"]})
    async with client_of(gateway, s.lead_secret) as lead:
        for path, body in (
            ("/key/update", {"key": key["token"], "blocked": False}),
            ("/key/update", {"key": key["token"], "blocked": None}),
            ("/key/unblock", {"key": key["token"]}),
        ):
            error_of(await lead.post(path, json=body), 403, "blocked")
        # Blocking again does not make the block the team admin's own.
        assert (await lead.post("/key/block", json={"key": key["token"]})).status_code == 200
        error_of(await lead.post("/key/unblock", json={"key": key["token"]}), 403, "blocked")
        assert (await chat(gateway, key["key"])).status_code == 401
        own = (await lead.post("/key/generate", json={"team_id": s.team})).json()
        assert (await lead.post("/key/block", json={"key": own["token"]})).status_code == 200
        assert (await lead.post("/key/unblock", json={"key": own["token"]})).status_code == 200


async def test_team_admin_cannot_clear_or_widen_a_keys_models(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """Bug: a team admin cleared a key's ``models`` restriction (``[]`` means every model)."""
    s = await _setup(admin)
    key = await new_key(admin, team_id=s.team, models=[FLAT_MODEL])
    async with client_of(gateway, s.lead_secret) as lead:
        for models in ([], [FLAT_MODEL, CHAT_MODEL], ["all-proxy-models"]):
            response = await lead.post("/key/update", json={"key": key["token"], "models": models})
            error_of(response, 403, "models")
    assert (await get(admin, "/key/info", key=key["token"]))["info"]["models"] == [FLAT_MODEL]
    await post(admin, "/team/update", {"team_id": s.team, "models": [FLAT_MODEL]})
    async with client_of(gateway, s.lead_secret) as lead:
        response = await lead.post("/key/generate", json={"team_id": s.team, "models": [CHAT_MODEL]})
        error_of(response, 403, "models")
        narrowed = await lead.post("/key/generate", json={"team_id": s.team, "models": [FLAT_MODEL]})
        assert narrowed.status_code == 200, narrowed.text


async def test_team_admin_cannot_add_foreign_tags_to_a_key(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """Bug: a team admin put other teams' tags (or free tags with budgets) on their keys, charging those budgets;
    removing a tag a proxy admin set would escape its budget. Only the team's own tags move."""
    s = await _setup(admin)
    foreign, own = uid("tag"), uid("tag")
    await post(admin, "/tag/new", {"name": foreign, "max_budget": 1})
    await post(admin, "/team/update", {"team_id": s.other_team, "tags": [foreign]})
    await post(admin, "/team/update", {"team_id": s.team, "tags": [own]})
    imposed = await new_key(admin, team_id=s.team, tags=[foreign])
    async with client_of(gateway, s.lead_secret) as lead:
        error_of(await lead.post("/key/generate", json={"team_id": s.team, "tags": [foreign]}), 403, "tags")
        key = (await lead.post("/key/generate", json={"team_id": s.team, "tags": [own]})).json()
        error_of(await lead.post("/key/update", json={"key": key["token"], "tags": [own, foreign]}), 403, "tags")
        error_of(await lead.post("/key/update", json={"key": imposed["token"], "tags": []}), 403, "tags")
    assert (await get(admin, "/key/info", key=key["token"]))["info"]["tags"] == [own]


async def test_team_admin_cannot_reset_their_own_teams_spend(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """Bug: a team admin reset their own team's spend as often as they liked, so the team budget meant nothing."""
    s = await _setup(admin)
    await post(admin, "/team/update", {"team_id": s.team, "max_budget": 1e-5})
    key = await new_key(admin, team_id=s.team)
    assert (await chat(gateway, key["key"])).status_code == 200
    async with client_of(gateway, s.lead_secret) as lead:
        error_of(await lead.post(f"/team/{s.team}/reset_spend", json={"reset_to": 0}), 403)
    assert (await get(admin, "/team/info", team_id=s.team))["team_info"]["spend"] > 0


async def test_team_user_and_tag_models_are_enforced_at_request_time(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Bug: ``models`` on teams, users and tags was stored but only the key's list was enforced. Now a request
    must be allowed by every list that applies (403 naming the entity, param ``model``); /v1/models agrees."""
    team = (await new_team(admin, models=[FLAT_MODEL]))["team_id"]
    team_key = await new_key(admin, team_id=team)
    user = await new_user(admin, models=[FLAT_MODEL])
    tag = uid("tag")
    await post(admin, "/tag/new", {"name": tag, "models": [FLAT_MODEL]})
    tagged_key = await new_key(admin, tags=[tag])
    for secret, entity in ((team_key["key"], "team"), (user["key"], "user"), (tagged_key["key"], "tag")):
        error = error_of(await chat(gateway, secret, model=CHAT_MODEL), 403, "model")
        assert error["message"].startswith(entity) and CHAT_MODEL in error["message"], error
        assert error["type"] == "permission_error"
        assert (await chat(gateway, secret)).status_code == 200
        async with client_of(gateway, secret) as client:
            listed = {m["id"] for m in (await client.get("/v1/models")).json()["data"]}
        assert listed == {FLAT_MODEL}
    # A team key bound to a restricted user is held to the user's list too.
    await add_member(admin, team, user["user_id"])
    await post(admin, "/team/update", {"team_id": team, "models": []})
    await post(admin, "/user/update", {"user_id": user["user_id"], "models": [CHAT_MODEL]})
    bound = await new_key(admin, team_id=team, user_id=user["user_id"])
    error_of(await chat(gateway, bound["key"]), 403, "model")
