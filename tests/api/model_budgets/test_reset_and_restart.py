"""A model window's spend is the ledger's spend for that model: reset per model window, rebuilt by model after a
restart, and equal to the ledger sum of the model's requests."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.api.entities.helpers import (
    ONE_REQUEST,
    PLENTY,
    REQUEST_NANOS,
    clear_of_boundary,
    client_of,
    error_of,
    get,
    new_key,
    new_team,
    post,
    refused_by,
    usd,
)
from tests.api.model_budgets.helpers import MODEL_A, MODEL_B, chat_a, chat_b, key_view, ledger_spend
from tests.support.gateway import MASTER_KEY, GatewayServer


async def test_model_budget_reset_spend_of_a_model_window(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """``reset_spend`` with ``model`` (and ``budget_duration``) resets that model window alone, which admits the
    model again at once; the same duration without ``model`` names the key's own window."""
    await clear_of_boundary(86400)
    key = await new_key(
        admin,
        budget_limits=[{"budget_duration": "1d", "max_budget": PLENTY}],
        model_max_budget={MODEL_A: {"max_budget": ONE_REQUEST, "budget_duration": "1d"}},
    )
    assert (await chat_a(gateway, key["key"])).status_code == 200
    assert refused_by(await chat_a(gateway, key["key"])) == ("key", key["token"], "1d")
    path = f"/key/{key['token']}/reset_spend"
    result = await post(admin, path, {"reset_to": 0, "budget_duration": "24h", "model": MODEL_A})
    assert (result["budget_duration"], result["model"], result["previous_spend"], result["spend"]) == (
        "1d",
        MODEL_A,
        ONE_REQUEST,
        0.0,
    )
    info = await key_view(admin, key["key"])
    assert info["model_max_budget"][MODEL_A]["spend"] == 0.0
    assert info["budget_limits"][0]["spend"] == ONE_REQUEST  # the key's own 1d window keeps its spend
    assert (await chat_a(gateway, key["key"])).status_code == 200
    by_model_only = await post(admin, path, {"reset_to": 0, "model": MODEL_A})  # the model's first window
    assert (by_model_only["model"], by_model_only["previous_spend"]) == (MODEL_A, ONE_REQUEST)
    general = await post(admin, path, {"reset_to": 0, "budget_duration": "1d"})
    assert (general["model"], general["previous_spend"]) == (None, 2 * ONE_REQUEST)
    missing = error_of(await admin.post(path, json={"reset_to": 0, "model": MODEL_B}), 404, "model")
    assert MODEL_B in missing["message"]
    error_of(await admin.post(path, json={"reset_to": 0, "budget_duration": "1h", "model": MODEL_A}), 404)


async def test_model_budget_team_reset_spend_of_a_model_window(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A team's model window is reset through ``/team/{team_id}/reset_spend`` with ``model``."""
    await clear_of_boundary(3600)
    team = await new_team(admin, model_max_budget={MODEL_A: {"max_budget": ONE_REQUEST, "budget_duration": "1h"}})
    key = await new_key(admin, team_id=team["team_id"])
    assert (await chat_a(gateway, key["key"])).status_code == 200
    assert (await chat_a(gateway, key["key"])).status_code == 429
    await post(admin, f"/team/{team['team_id']}/reset_spend", {"reset_to": 0, "model": MODEL_A})
    assert (await chat_a(gateway, key["key"])).status_code == 200
    info = (await get(admin, "/team/info", team_id=team["team_id"]))["team_info"]
    assert info["model_max_budget"][MODEL_A]["spend"] == ONE_REQUEST


async def test_model_budget_restart_rebuilds_model_windows_by_model(
    gateway_factory: Callable[..., GatewayServer],
) -> None:
    """After a restart a model window's counter is loaded from the ledger counting only its model's charges:
    spend on another model before the restart must not refuse the model, and its own spend must still count."""
    gateway = gateway_factory()
    await clear_of_boundary(86400)
    async with client_of(gateway, MASTER_KEY) as admin:
        key = await new_key(admin, model_max_budget={MODEL_A: {"max_budget": 2 * ONE_REQUEST, "budget_duration": "1d"}})
    assert (await chat_a(gateway, key["key"])).status_code == 200
    b_cost = sum([await chat_b(gateway, key["key"]) for _ in range(3)])
    assert b_cost > 2 * REQUEST_NANOS  # enough to refuse model A if the window counted model B

    gateway.restart()

    async with client_of(gateway, MASTER_KEY) as admin:
        info = await key_view(admin, key["key"])
        assert info["model_max_budget"][MODEL_A]["spend"] == ONE_REQUEST
        assert info["spend"] == usd(REQUEST_NANOS + b_cost)
        assert (await chat_a(gateway, key["key"])).status_code == 200
        assert refused_by(await chat_a(gateway, key["key"])) == ("key", key["token"], "1d")
        assert (await key_view(admin, key["key"]))["model_max_budget"][MODEL_A]["spend"] == 2 * ONE_REQUEST


async def test_model_budget_seed_window_spend_equals_the_ledger_sum_of_its_model(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Seed-style invariant: after a mix of admitted and refused requests for two models, each model window's
    spend equals the ledger's sum for the key's requests of that model, and the key's spend equals their total."""
    await clear_of_boundary(86400)
    key = await new_key(
        admin,
        model_max_budget={
            MODEL_A: {"max_budget": 3 * ONE_REQUEST, "budget_duration": "1d"},
            MODEL_B: {"max_budget": PLENTY, "budget_duration": "1h"},
        },
    )
    statuses = [(await chat_a(gateway, key["key"])).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    for _ in range(2):
        await chat_b(gateway, key["key"])
    info = await key_view(admin, key["key"])
    a_ledger, b_ledger = await ledger_spend(admin, key["key"], MODEL_A), await ledger_spend(admin, key["key"], MODEL_B)
    assert a_ledger == 3 * REQUEST_NANOS
    assert info["model_max_budget"][MODEL_A]["spend"] == usd(a_ledger)
    assert info["model_max_budget"][MODEL_B]["spend"] == usd(b_ledger) > 0
    assert info["spend"] == usd(a_ledger + b_ledger)
