"""Per-model windows (``model_max_budget``) on keys and teams: enforced and charged only for their model, next
to the entity's other windows, through the real gateway."""

from __future__ import annotations

import httpx

from tests.api.entities.helpers import (
    ONE_REQUEST,
    PLENTY,
    REQUEST_NANOS,
    chat,
    clear_of_boundary,
    error_of,
    get,
    new_key,
    new_team,
    refused_by,
    usd,
)
from tests.api.model_budgets.helpers import MODEL_A, MODEL_B, chat_a, chat_b, key_view, next_midnight
from tests.support.gateway import GatewayServer

DAILY_ONE_REQUEST = {MODEL_A: {"max_budget": ONE_REQUEST, "budget_duration": "1d"}}


async def test_model_budget_key_blocks_its_model_only(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """An exhausted model window refuses requests for its model (429 naming the window and the model) while
    requests for another model are admitted, and the key's overall window counts the spend of both models."""
    await clear_of_boundary(86400)
    key = await new_key(admin, max_budget=PLENTY, model_max_budget=DAILY_ONE_REQUEST)
    assert (await chat_a(gateway, key["key"])).status_code == 200
    refused = await chat_a(gateway, key["key"])
    assert refused_by(refused) == ("key", key["token"], "1d")
    error = refused.json()["error"]
    assert error["model"] == MODEL_A
    assert f"window=1d model={MODEL_A} " in error["message"]
    assert error["reset_at"] == next_midnight()
    b_cost = await chat_b(gateway, key["key"]) + await chat_b(gateway, key["key"])
    info = await key_view(admin, key["key"])
    assert info["spend"] == info["lifetime_spend"] == usd(REQUEST_NANOS + b_cost)
    assert info["model_max_budget"] == {
        MODEL_A: {
            "budget_duration": "1d",
            "max_budget": ONE_REQUEST,
            "spend": ONE_REQUEST,
            "held": 0.0,
            "reset_at": next_midnight(),
        }
    }
    assert info["budget_limits"] == []


async def test_model_budget_overall_window_still_refuses_every_model(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A model window adds a limit, it never lifts one: once the key's overall budget is spent (on model A,
    within A's larger model window), model B is refused by the overall window, which names no model."""
    key = await new_key(admin, max_budget=ONE_REQUEST, model_max_budget={MODEL_A: {"max_budget": PLENTY}})
    assert (await chat_a(gateway, key["key"])).status_code == 200
    refused = error_of(await chat(gateway, key["key"], model=MODEL_B), 429)
    assert refused["model"] is None and " model=" not in refused["message"]
    info = await key_view(admin, key["key"])
    assert info["model_max_budget"][MODEL_A]["spend"] == info["spend"] == ONE_REQUEST
    assert info["model_max_budget"][MODEL_A]["budget_duration"] is None  # a lifetime model window


async def test_model_budget_team_blocks_its_model_for_every_team_key(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A team's model window is shared by the team's keys: once one key spent it, another team key is refused
    for that model (by the team, naming the model) and still served for other models."""
    await clear_of_boundary(86400)
    team = await new_team(admin, max_budget=PLENTY, model_max_budget=DAILY_ONE_REQUEST)
    first = await new_key(admin, team_id=team["team_id"])
    second = await new_key(admin, team_id=team["team_id"])
    assert (await chat_a(gateway, first["key"])).status_code == 200
    refused = await chat_a(gateway, second["key"])
    assert refused_by(refused) == ("team", team["team_id"], "1d")
    assert refused.json()["error"]["model"] == MODEL_A
    b_cost = await chat_b(gateway, second["key"])
    info = (await get(admin, "/team/info", team_id=team["team_id"]))["team_info"]
    assert info["spend"] == usd(REQUEST_NANOS + b_cost)
    window = info["model_max_budget"][MODEL_A]
    assert (window["spend"], window["max_budget"], window["reset_at"]) == (ONE_REQUEST, ONE_REQUEST, next_midnight())


async def test_model_budget_windows_of_key_and_team_apply_together(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A key's model window and its team's model window for the same model both apply; the smaller refuses."""
    await clear_of_boundary(3600)
    team = await new_team(admin, model_max_budget={MODEL_A: {"max_budget": 2 * ONE_REQUEST, "budget_duration": "1h"}})
    key = await new_key(admin, team_id=team["team_id"], model_max_budget={MODEL_A: {"max_budget": PLENTY}})
    assert (await chat_a(gateway, key["key"])).status_code == 200
    assert (await chat_a(gateway, key["key"])).status_code == 200
    assert refused_by(await chat_a(gateway, key["key"])) == ("team", team["team_id"], "1h")
    info = await key_view(admin, key["key"])
    assert info["model_max_budget"][MODEL_A]["spend"] == 2 * ONE_REQUEST
