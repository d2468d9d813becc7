"""The adversarial review of the issue-12 fixes (attacks a1 .. a9, run against a live gateway): each hole as a
regression test over the real admin HTTP API. The attacker is the admin of team A (an internal user with member
role ``admin``); every limit they escape was set by a proxy admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    refused_by,
    uid,
)
from tests.support.gateway import CHAT_MODEL, FLAT_MODEL, GatewayServer


@dataclass
class Setup:
    team: str
    other_team: str
    lead: str  # team A's admin (user id)
    lead_secret: str  # a key a proxy admin issued for them (it follows their user)
    member: str  # a teamless internal user, the attack's victim or accomplice


async def _setup(admin: httpx.AsyncClient) -> Setup:
    team, other_team = (await new_team(admin))["team_id"], (await new_team(admin))["team_id"]
    lead = await new_user(admin)
    member = await new_user(admin, auto_create_key=False)
    await add_member(admin, team, lead["user_id"], "admin")
    return Setup(team, other_team, lead["user_id"], lead["key"], member["user_id"])


async def _key_as_member(gateway: GatewayServer, s: Setup) -> dict[str, str]:
    """a1/a8: the team admin adds the teamless user and issues a key as them, keeping its secret."""
    async with client_of(gateway, s.lead_secret) as lead:
        await post(lead, "/team/member_add", {"team_id": s.team, "member": {"user_id": s.member}})
        key: dict[str, str] = await post(lead, "/key/generate", {"team_id": s.team, "user_id": s.member})
    return key


async def test_a1_key_a_team_admin_issued_for_a_member_does_not_gain_the_members_later_promotions(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Review a1 (HIGH): K1 issued by team A's admin as a plain member later issued team-B keys once a proxy admin
    made the member admin of team B, and had proxy-admin powers once the member was made proxy_admin. A key never
    has more power than its issuer had when it was issued: both are 403 now, while a key a proxy admin issued for
    the same user follows the user (200)."""
    s = await _setup(admin)
    stolen = await _key_as_member(gateway, s)
    own = await new_key(admin, user_id=s.member)  # issued by a proxy admin: follows its user
    await add_member(admin, s.other_team, s.member, "admin")
    async with client_of(gateway, stolen["key"]) as k1:
        error_of(await k1.post("/key/generate", json={"team_id": s.other_team, "key_alias": "stolenB"}), 403)
        body = {"team_id": s.other_team, "member": {"user_id": uid("x")}}
        error_of(await k1.post("/team/member_add", json=body), 403, "team_id")
    async with client_of(gateway, own["key"]) as proper:
        await post(proper, "/key/generate", {"team_id": s.other_team})
    await post(admin, "/user/update", {"user_id": s.member, "user_role": "proxy_admin"})
    async with client_of(gateway, stolen["key"]) as k1:
        error_of(await k1.get("/user/list"), 403)
        error_of(await k1.post("/team/new", json={"team_id": uid("evil")}), 403)
    async with client_of(gateway, own["key"]) as proper:
        assert (await proper.get("/user/list")).status_code == 200


async def test_a1_a_team_admins_own_key_and_a_rebound_key_keep_the_ceiling_of_their_issuer(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Review a1, the other paths: a key rebound by a team admin (``/key/update user_id``) records the ceiling as
    a generated one does, and a key a team admin issued for themselves stays an internal user's key after a proxy
    admin promotes them (403); a proxy admin's rebind lifts the ceiling again (the key follows its user, 200)."""
    s = await _setup(admin)
    async with client_of(gateway, s.lead_secret) as lead:
        own = await post(lead, "/key/generate", {"team_id": s.team})
        await post(lead, "/team/member_add", {"team_id": s.team, "member": {"user_id": s.member}})
        rebound = await post(lead, "/key/generate", {"team_id": s.team})
        await post(lead, "/key/update", {"key": rebound["token"], "user_id": s.member})
    assert own["user_id"] == s.lead
    await add_member(admin, s.other_team, s.member, "admin")
    await post(admin, "/user/update", {"user_id": s.lead, "user_role": "proxy_admin"})
    async with client_of(gateway, rebound["key"]) as k:
        error_of(await k.post("/key/generate", json={"team_id": s.other_team}), 403)
    async with client_of(gateway, own["key"]) as k:
        error_of(await k.get("/user/list"), 403)
    await post(admin, "/key/update", {"key": own["token"], "user_id": s.lead})  # a proxy admin rebinds it
    async with client_of(gateway, own["key"]) as k:
        assert (await k.get("/user/list")).status_code == 200


async def test_a8_key_a_team_admin_issued_for_a_member_does_not_read_the_members_personal_keys(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Review a8 / finding 7 (LOW): through a key issued as the member, the team admin read the member's personal
    key (alias, budget, metadata) with ``/key/list?return_full_object=true`` and ``/user/info``. Now both show only
    what concerns the key's team."""
    s = await _setup(admin)
    personal = await new_key(admin, user_id=s.member, key_alias="u1-personal", metadata={"note": "u1 private"})
    stolen = await _key_as_member(gateway, s)
    async with client_of(gateway, stolen["key"]) as k:
        listed = await get(k, "/key/list", return_full_object="true")
        assert [key["token"] for key in listed["keys"]] == [stolen["token"]]
        assert (await get(k, "/key/list", team_id=s.other_team))["keys"] == []
        info = await get(k, "/user/info")
    assert [key["token"] for key in info["keys"]] == [stolen["token"]]
    assert "u1 private" not in str(info) and personal["token"] not in str(info)
    assert [team["team_id"] for team in info["teams"]] == [s.team]
    await add_member(admin, s.other_team, s.member)  # a team the member joins later is not the key's to read
    async with client_of(gateway, stolen["key"]) as k:
        assert [team["team_id"] for team in await get(k, "/team/list")] == [s.team]
        error_of(await k.get("/team/info", params={"team_id": s.other_team}), 403, "team_id")
        assert (await get(k, "/team/info", team_id=s.team))["team_id"] == s.team


async def test_a2_a3_user_less_key_by_a_team_admin_is_bound_to_them_and_keeps_their_limits(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Review a2/a3 (MEDIUM): a team key a team admin issued without ``user_id`` charged no ``team_member`` and
    skipped the user's models, escaping the member budget and models a proxy admin set on the team admin. Such a
    key is now bound to the issuing admin: 429 from ``team_member``, 403 for a model outside the user's list."""
    s = await _setup(admin)
    await post(admin, "/team/member_update", {"team_id": s.team, "user_id": s.lead, "max_budget_in_team": ONE_REQUEST})
    await post(admin, "/user/update", {"user_id": s.lead, "models": [FLAT_MODEL]})
    async with client_of(gateway, s.lead_secret) as lead:
        key = await post(lead, "/key/generate", {"team_id": s.team})
        rebound = await post(lead, "/key/generate", {"team_id": s.team})
        unbound = await post(lead, "/key/update", {"key": rebound["token"], "user_id": None})
    assert key["user_id"] == s.lead and unbound["user_id"] == s.lead
    error_of(await chat(gateway, key["key"], model=CHAT_MODEL), 403, "model")
    assert (await chat(gateway, key["key"])).status_code == 200
    assert refused_by(await chat(gateway, key["key"]))[0] == "team_member"


async def test_a2_team_admin_may_not_change_their_own_membership(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Review a2 (MEDIUM): ``/team/member_update`` on oneself with ``role: user`` and a new ``max_budget_in_team``
    was 200, lifting the member budget a proxy admin set; raising it alone said "only a proxy admin may make a team
    admin". A team admin's own entry is now out of their reach (403 ``user_id``, a message saying so)."""
    s = await _setup(admin)
    await post(admin, "/team/member_update", {"team_id": s.team, "user_id": s.lead, "max_budget_in_team": ONE_REQUEST})
    changes: list[dict[str, Any]] = [
        {"role": "user", "max_budget_in_team": 100},
        {"max_budget_in_team": 100},
        {"role": "admin"},
    ]
    async with client_of(gateway, s.lead_secret) as lead:
        for change in changes:
            response = await lead.post("/team/member_update", json={"team_id": s.team, "user_id": s.lead, **change})
            error = error_of(response, 403, "user_id")
            assert "their own membership" in error["message"], error
        error_of(await lead.post("/team/member_delete", json={"team_id": s.team, "user_id": s.lead}), 403, "user_id")
    (membership,) = (await get(admin, "/team/info", team_id=s.team))["team_memberships"]
    assert membership["user_id"] == s.lead and membership["role"] == "admin"


async def test_a4_team_admin_cannot_loosen_limits_a_proxy_admin_set_on_a_key(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Review a4 (MEDIUM): ``/key/update {"max_budget": null}`` by the team admin cleared a proxy admin's cap.
    Such limits (``limits_set_by``) may only be tightened: clearing, raising or re-windowing is 403 naming the
    field; lowering is 200."""
    s = await _setup(admin)
    await add_member(admin, s.team, s.member)
    limits = {"max_budget": 1.0, "budget_duration": "1d", "rpm_limit": 10, "duration": "30d"}
    key = await new_key(admin, team_id=s.team, user_id=s.member, **limits)
    refused: list[tuple[dict[str, Any], str]] = [
        ({"max_budget": None, "budget_duration": None}, "max_budget"),
        ({"max_budget": 2.0}, "max_budget"),
        ({"budget_duration": "1mo"}, "max_budget"),
        ({"rpm_limit": None}, "rpm_limit"),
        ({"rpm_limit": 11}, "rpm_limit"),
        ({"duration": None}, "duration"),
    ]
    async with client_of(gateway, s.lead_secret) as lead:
        for change, field in refused:
            error = error_of(await lead.post("/key/update", json={"key": key["token"], **change}), 403, field)
            assert "only tighten" in error["message"], error
        await post(lead, "/key/update", {"key": key["token"], "max_budget": 0.5, "rpm_limit": 5})
    info = (await get(admin, "/key/info", key=key["token"]))["info"]
    assert (info["max_budget"], info["rpm_limit"]) == (0.5, 5)


async def test_a4_team_admin_cannot_reset_or_delete_a_key_a_proxy_admin_limited_or_blocked(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Review a4 (MEDIUM): the team admin reset a proxy-capped key's spend as often as they liked, and deleted a
    proxy-blocked key to issue a fresh one for the same user. Both are 403 (param ``key``) now; a key the team
    admin limited themselves can still be reset and deleted (200)."""
    s = await _setup(admin)
    await add_member(admin, s.team, s.member)
    capped = await new_key(admin, team_id=s.team, user_id=s.member, max_budget=ONE_REQUEST)
    blocked = await new_key(admin, team_id=s.team, user_id=s.member)
    await post(admin, "/key/block", {"key": blocked["token"]})
    assert (await chat(gateway, capped["key"])).status_code == 200
    async with client_of(gateway, s.lead_secret) as lead:
        error_of(await lead.post(f"/key/{capped['token']}/reset_spend", json={"reset_to": 0}), 403, "key")
        for token in (capped["token"], blocked["token"]):
            error_of(await lead.post("/key/delete", json={"keys": [token]}), 403, "key")
        own = await post(lead, "/key/generate", {"team_id": s.team, "user_id": s.member, "max_budget": ONE_REQUEST})
        assert (await chat(gateway, own["key"])).status_code == 200
        await post(lead, f"/key/{own['token']}/reset_spend", {"reset_to": 0})
        await post(lead, "/key/delete", {"keys": [own["token"]]})
    assert refused_by(await chat(gateway, capped["key"]))[0] == "key"
    assert (await get(admin, "/key/info", key=blocked["token"]))["info"]["blocked"] is True


async def test_a5_admin_of_a_blocked_team_cannot_manage_it(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """Review a5 (LOW): after a proxy admin blocked team A, its admin still issued keys and added members. Every
    team-admin write on a blocked team is 403 (param ``team_id``) until a proxy admin unblocks it."""
    s = await _setup(admin)
    async with client_of(gateway, s.lead_secret) as lead:
        key = await post(lead, "/key/generate", {"team_id": s.team})
    await post(admin, "/team/block", {"team_id": s.team})
    async with client_of(gateway, s.lead_secret) as lead:
        writes = [
            ("/key/generate", {"team_id": s.team}),
            ("/key/update", {"key": key["token"], "key_alias": "renamed"}),
            ("/key/delete", {"keys": [key["token"]]}),
            (f"/key/{key['token']}/reset_spend", {"reset_to": 0}),
            ("/team/member_add", {"team_id": s.team, "member": {"user_id": uid("new")}}),
        ]
        for path, body in writes:
            error = error_of(await lead.post(path, json=body), 403, "team_id")
            assert "blocked" in error["message"], error
    await post(admin, "/team/unblock", {"team_id": s.team})
    async with client_of(gateway, s.lead_secret) as lead:
        await post(lead, "/key/update", {"key": key["token"], "key_alias": "renamed"})


async def test_a9_refused_member_list_creates_no_user(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """Review a9 (LOW): ``/team/member_add`` with [a new user, an existing member] was refused but had created
    the new user already. Every member is checked before anything is written: refused, and no user exists."""
    s = await _setup(admin)
    await add_member(admin, s.team, s.member)
    fresh, other = uid("newX"), uid("newY")
    async with client_of(gateway, s.lead_secret) as lead:
        body = {"team_id": s.team, "member": [{"user_id": fresh}, {"user_id": s.lead}]}
        error_of(await lead.post("/team/member_add", json=body), 403, "user_id")
    body = {"team_id": s.team, "member": [{"user_id": other}, {"user_id": s.member}]}
    error_of(await admin.post("/team/member_add", json=body), 409, "member")
    for user_id in (fresh, other):
        error_of(await admin.get("/user/info", params={"user_id": user_id}), 404)


async def test_a6_duplicate_json_key_in_an_admin_body_is_refused(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Review finding 6 (LOW): ``{"max_budget": 0.01, "max_budget": null}`` created an unlimited key (the last
    duplicate won). Any admin body with a duplicate key, at any depth, is a 400 naming it, and nothing is written."""
    alias = uid("dup")
    bodies = [
        f'{{"key_alias": "{alias}", "max_budget": 0.01, "max_budget": null}}',
        f'{{"key_alias": "{alias}", "metadata": {{"a": {{"note": 1, "note": 2}}}}}}',
    ]
    headers = {"content-type": "application/json"}
    for raw, field in zip(bodies, ("max_budget", "note"), strict=True):
        response = await admin.post("/key/generate", content=raw.encode(), headers=headers)
        error = error_of(response, 400, field)
        assert "twice" in error["message"], error
    assert (await get(admin, "/key/list", key_alias=alias))["keys"] == []
    team = uid("team")
    raw = f'{{"team_id": "{team}", "budget_limits": [{{"budget_duration": "1d", "max_budget": 1, "max_budget": 9}}]}}'
    error_of(await admin.post("/team/new", content=raw.encode(), headers=headers), 400, "max_budget")
    error_of(await admin.get("/team/info", params={"team_id": team}), 404)
    async with client_of(gateway, None) as anonymous:  # checked before authentication, without leaking anything
        error_of(await anonymous.post("/key/generate", content=bodies[0].encode(), headers=headers), 400)
