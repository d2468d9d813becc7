"""Seed 002: a user's budget windows (``max_budget``/``budget_duration`` + ``budget_limits``) aggregate the
spend of all of that user's personal keys; no single key's budget can exceed them."""

from __future__ import annotations

import httpx

from tests.api.entities.helpers import ONE_REQUEST, chat, clear_of_boundary, get, new_key, new_user, post, refused_by
from tests.support.gateway import GatewayServer


async def test_seed_002_user_windows_aggregate_across_all_personal_keys(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Two requests on two different personal keys fill the user's 1d window of two requests; a third key of the
    same user is then refused by the *user* window, although no key has a budget of its own."""
    await clear_of_boundary(86400)
    windows = [{"budget_duration": "1d", "max_budget": 2 * ONE_REQUEST}, {"budget_duration": "7d", "max_budget": 1}]
    user = await new_user(admin, max_budget=1, budget_duration="30d", budget_limits=windows)
    second = await new_key(admin, user_id=user["user_id"])
    third = await new_key(admin, user_id=user["user_id"])
    assert (await chat(gateway, user["key"])).status_code == 200
    assert (await chat(gateway, second["key"])).status_code == 200
    for secret in (third["key"], user["key"]):
        assert refused_by(await chat(gateway, secret)) == ("user", user["user_id"], "1d")
    info = await get(admin, "/user/info", user_id=user["user_id"])
    user_info = info["user_info"]
    assert (user_info["spend"], user_info["budget_duration"], user_info["max_budget"]) == (2 * ONE_REQUEST, "30d", 1)
    assert isinstance(user_info["budget_reset_at"], str)
    assert [(w["budget_duration"], w["spend"]) for w in user_info["budget_limits"]] == [
        ("1d", 2 * ONE_REQUEST),
        ("7d", 2 * ONE_REQUEST),
    ]
    assert all(isinstance(w["reset_at"], str) for w in user_info["budget_limits"])
    assert sorted(k["token"] for k in info["keys"]) == sorted([user["token"], second["token"], third["token"]])
    assert sum(k["lifetime_spend"] for k in info["keys"]) == 2 * ONE_REQUEST


async def test_seed_002_user_windows_can_be_added_later_and_count_earlier_spend(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A window added by ``/user/update`` counts the spend already made in its current period (spend is derived
    from the ledger, not from a counter that starts at zero when the window appears)."""
    await clear_of_boundary(3600)
    user = await new_user(admin)
    assert (await chat(gateway, user["key"])).status_code == 200
    updated = await post(
        admin,
        "/user/update",
        {"user_id": user["user_id"], "budget_limits": [{"budget_duration": "1h", "max_budget": ONE_REQUEST}]},
    )
    assert updated["budget_limits"][0]["spend"] == ONE_REQUEST
    assert refused_by(await chat(gateway, user["key"])) == ("user", user["user_id"], "1h")
