"""Seed 000: ``reset_spend`` for keys and every entity — validated, authorised (proxy admin or the team's admin),
recorded as an adjustment, and enforced by the very next request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.entities.helpers import (
    ONE_REQUEST,
    PLENTY,
    add_member,
    chat,
    clear_of_boundary,
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
from tests.support.gateway import GatewayServer


async def _team_with_roles(admin: httpx.AsyncClient) -> dict[str, Any]:
    """A team with an admin and a plain member, a second team with its own admin, and a team key spent once."""
    team = await new_team(admin)
    other_team = await new_team(admin)
    team_admin, member, other_admin = [await new_user(admin) for _ in range(3)]
    await add_member(admin, team["team_id"], team_admin["user_id"], "admin")
    await add_member(admin, team["team_id"], member["user_id"], "user")
    await add_member(admin, other_team["team_id"], other_admin["user_id"], "admin")
    # Issued by the team admin: limits a proxy admin sets on a key are out of a team admin's reach (even a reset).
    lead_headers = {"authorization": f"Bearer {team_admin['key']}"}
    async with httpx.AsyncClient(base_url=admin.base_url, headers=lead_headers, timeout=30.0) as lead:
        fields = {"team_id": team["team_id"], "max_budget": ONE_REQUEST, "budget_duration": "1h"}
        key = await post(lead, "/key/generate", fields)
    return {
        "team": team["team_id"],
        "key": key,
        "team_admin": team_admin["key"],
        "member": member["key"],
        "other_admin": other_admin["key"],
    }


async def _reset(gateway: GatewayServer, secret: str | None, path: str, body: dict[str, Any]) -> httpx.Response:
    async with client_of(gateway, secret) as client:
        return await client.post(path, json=body)


async def test_seed_000_team_admin_may_reset_a_key_of_their_team(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """An admin of the key's team may reset its spend; the refused key is admitted at once, and the adjustment
    names the team admin's key as actor."""
    await clear_of_boundary(3600)
    setup = await _team_with_roles(admin)
    key = setup["key"]
    assert (await chat(gateway, key["key"])).status_code == 200
    assert refused_by(await chat(gateway, key["key"]))[0] == "key"
    response = await _reset(gateway, setup["team_admin"], f"/key/{key['token']}/reset_spend", {"reset_to": 0})
    assert response.status_code == 200, response.text
    assert (response.json()["previous_spend"], response.json()["spend"]) == (ONE_REQUEST, 0)
    assert (await chat(gateway, key["key"])).status_code == 200
    (adjustment,) = await get(admin, "/spend/adjustments", entity_type="key", entity_id=key["token"])
    assert adjustment["actor"].startswith("key:")


@pytest.mark.parametrize("who", ["other_admin", "member", "no_key"])
async def test_seed_000_key_reset_by_another_team_admin_or_a_member_is_refused(
    gateway: GatewayServer, admin: httpx.AsyncClient, who: str
) -> None:
    """An admin of another team and a plain member of the key's team get 403 (no key: 401); spend is unchanged."""
    setup = await _team_with_roles(admin)
    key = setup["key"]
    assert (await chat(gateway, key["key"])).status_code == 200
    response = await _reset(gateway, setup.get(who), f"/key/{key['token']}/reset_spend", {"reset_to": 0})
    error_of(response, 401 if who == "no_key" else 403)
    info = await get(admin, "/key/info", key=key["token"])
    assert info["info"]["spend"] == ONE_REQUEST
    assert await get(admin, "/spend/adjustments", entity_type="key", entity_id=key["token"]) == []


async def test_seed_000_team_reset_is_for_proxy_admins_only(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """``/team/{id}/reset_spend``: a proxy admin may; the team's own admin (issue 12: a team admin resetting their
    own team's spend makes its budget meaningless), another team's admin and a member get 403."""
    await clear_of_boundary(3600)
    setup = await _team_with_roles(admin)
    team_id = setup["team"]
    await post(admin, "/team/update", {"team_id": team_id, "max_budget": ONE_REQUEST, "budget_duration": "1h"})
    key = await new_key(admin, team_id=team_id)
    assert (await chat(gateway, key["key"])).status_code == 200
    assert refused_by(await chat(gateway, key["key"]))[:2] == ("team", team_id)
    for who in ("team_admin", "other_admin", "member"):
        error_of(await _reset(gateway, setup[who], f"/team/{team_id}/reset_spend", {"reset_to": 0}), 403)
    assert refused_by(await chat(gateway, key["key"]))[:2] == ("team", team_id)
    response = await admin.post(f"/team/{team_id}/reset_spend", json={"reset_to": 0})
    assert response.status_code == 200, response.text
    assert response.json()["team_id"] == team_id
    assert (await chat(gateway, key["key"])).status_code == 200


@pytest.mark.parametrize(
    ("reset_to", "says"),
    [(True, "bool"), ("0", "string"), (None, "number"), (-1, ">= 0"), (2 * ONE_REQUEST, "current spend")],
    ids=["bool", "string", "null", "negative", "above-spend"],
)
async def test_seed_000_entity_reset_rejects_invalid_reset_to(
    gateway: GatewayServer, admin: httpx.AsyncClient, reset_to: object, says: str
) -> None:
    """Every entity's ``reset_to`` follows the key rules: a number (not bool/string), >= 0, <= current spend."""
    team = await new_team(admin, max_budget=PLENTY)
    key = await new_key(admin, team_id=team["team_id"])
    assert (await chat(gateway, key["key"])).status_code == 200
    response = await admin.post(f"/team/{team['team_id']}/reset_spend", json={"reset_to": reset_to})
    error = error_of(response, 400, "reset_to")
    assert says in error["message"], error


async def test_seed_000_entity_reset_above_max_budget_and_unknown_window_or_entity(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """``reset_to`` above the window's max_budget is a 400; an unknown window or entity a 404."""
    await clear_of_boundary(3600)
    tag = uid("tag")
    await post(admin, "/tag/new", {"name": tag, "max_budget": ONE_REQUEST / 2, "budget_duration": "1h"})
    key = await new_key(admin, tags=[tag])
    assert (await chat(gateway, key["key"])).status_code == 200  # overshoots the half-request budget
    error = error_of(await admin.post(f"/tag/{tag}/reset_spend", json={"reset_to": ONE_REQUEST}), 400, "reset_to")
    assert "max_budget" in error["message"]
    error_of(await admin.post(f"/tag/{tag}/reset_spend", json={"reset_to": 0, "budget_duration": "1d"}), 404)
    for path in ("/tag/nope-x/reset_spend", "/team/nope-x/reset_spend", "/user/nope-x/reset_spend"):
        error_of(await admin.post(path, json={"reset_to": 0}), 404)


async def test_seed_000_every_entity_reset_is_recorded_and_enforced_at_once(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """For user, team, organization, customer and tag: a refused request is admitted right after the reset,
    and ``/spend/adjustments`` shows previous and new spend for that entity."""
    await clear_of_boundary(3600)
    one_hour = {"max_budget": ONE_REQUEST, "budget_duration": "1h"}
    user = await new_user(admin, **one_hour)
    org = await post(admin, "/organization/new", {"organization_id": uid("org"), **one_hour})
    team = await new_team(admin, **one_hour)
    org_team = await new_team(admin, organization_id=org["organization_id"])
    customer = uid("customer")
    await post(admin, "/customer/new", {"user_id": customer, **one_hour})
    tag = uid("tag")
    await post(admin, "/tag/new", {"name": tag, **one_hour})
    cases = [
        ("user", user["user_id"], f"/user/{user['user_id']}/reset_spend", user["key"], {}),
        ("team", team["team_id"], f"/team/{team['team_id']}/reset_spend", None, {"team_id": team["team_id"]}),
        (
            "organization",
            org["organization_id"],
            f"/organization/{org['organization_id']}/reset_spend",
            None,
            {"team_id": org_team["team_id"]},
        ),
        ("customer", customer, f"/customer/{customer}/reset_spend", None, {}),
        ("tag", tag, f"/tag/{tag}/reset_spend", None, {"tags": [tag]}),
    ]
    for entity, entity_id, path, secret, key_fields in cases:
        secret = secret or (await new_key(admin, **key_fields))["key"]
        extra = {"user": customer} if entity == "customer" else {}
        assert (await chat(gateway, secret, **extra)).status_code == 200, entity
        assert refused_by(await chat(gateway, secret, **extra))[:2] == (entity, entity_id)
        result = await post(admin, path, {"reset_to": 0, "reason": "test"})
        assert (result["entity_type"], result["previous_spend"], result["spend"]) == (entity, ONE_REQUEST, 0)
        assert (await chat(gateway, secret, **extra)).status_code == 200, entity
        (adjustment,) = await get(admin, "/spend/adjustments", entity_type=entity, entity_id=entity_id)
        assert (adjustment["previous_spend"], adjustment["new_spend"]) == (ONE_REQUEST, 0)
        assert (adjustment["actor"], adjustment["reason"]) == ("master_key", "test")


@pytest.mark.parametrize("path", ["/user/{}/reset_spend", "/organization/{}/reset_spend", "/tag/{}/reset_spend"])
async def test_seed_000_non_team_entity_resets_are_proxy_admin_only(
    gateway: GatewayServer, admin: httpx.AsyncClient, path: str
) -> None:
    """Only a proxy admin resets users, organizations, customers and tags; even a team admin gets 403."""
    setup = await _team_with_roles(admin)
    response = await _reset(gateway, setup["team_admin"], path.format("anything"), {"reset_to": 0})
    error_of(response, 403)
