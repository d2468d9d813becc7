"""``model_max_budget`` as an admin field: validated (400 naming the field), duplicates refused, shown with each
window's spend, and updated independently of ``budget_limits``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.entities.helpers import error_of, get, new_key, new_team, post
from tests.api.model_budgets.helpers import MODEL_A, MODEL_B, key_view

DAY = {"max_budget": 1, "budget_duration": "1d"}


@pytest.mark.parametrize(
    ("value", "param"),
    [
        (
            {MODEL_A: {**DAY, "budget_limits": [{"budget_duration": "24h", "max_budget": 2}]}},
            f"model_max_budget[{MODEL_A}].budget_limits",
        ),
        ({MODEL_A: {"max_budget": 1, "budget_duration": "daily", "budget_limits": [DAY]}}, None),
    ],
    ids=["24h-and-1d", "daily-and-1d"],
)
async def test_model_budget_duplicate_windows_of_one_model_are_refused(
    admin: httpx.AsyncClient, value: dict[str, Any], param: str | None
) -> None:
    """Two windows of one model over the same periods are duplicates (400): their spends could never differ."""
    for path in ("/key/generate", "/team/new"):
        error = error_of(await admin.post(path, json={"model_max_budget": value}), 400)
        assert error["param"].startswith(f"model_max_budget[{MODEL_A}]"), error
        if param is not None:
            assert error["param"] == param
        assert "duplicate window" in error["message"]


async def test_model_budget_same_period_for_other_models_and_the_entity_is_fine(admin: httpx.AsyncClient) -> None:
    """The same period for two models, and for the entity's own windows, are three distinct windows."""
    key = await new_key(
        admin,
        max_budget=5,
        budget_duration="1d",
        budget_limits=[{"budget_duration": "1h", "max_budget": 1}],
        model_max_budget={
            MODEL_A: {**DAY, "budget_limits": [{"budget_duration": "1h", "max_budget": 0.5}]},
            MODEL_B: DAY,
        },
    )
    assert (key["budget_duration"], [w["budget_duration"] for w in key["budget_limits"]]) == ("1d", ["1h"])
    shown = {
        model: (w["budget_duration"], w["max_budget"], w.get("budget_limits"))
        for model, w in key["model_max_budget"].items()
    }
    assert shown[MODEL_B] == ("1d", 1.0, None)
    assert shown[MODEL_A][:2] == ("1d", 1.0)
    assert [(w["budget_duration"], w["max_budget"], w["spend"]) for w in shown[MODEL_A][2]] == [("1h", 0.5, 0.0)]


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ([DAY], "model_max_budget"),
        ("not json", "model_max_budget"),
        ({MODEL_A: "1d"}, f"model_max_budget[{MODEL_A}]"),
        ({MODEL_A: {"budget_duration": "1d"}}, f"model_max_budget[{MODEL_A}]"),
        ({MODEL_A: {"max_budget": -1, "budget_duration": "1d"}}, f"model_max_budget[{MODEL_A}].max_budget"),
        ({MODEL_A: {"max_budget": True}}, f"model_max_budget[{MODEL_A}].max_budget"),
        ({MODEL_A: {"max_budget": 1, "budget_duration": "7x"}}, f"model_max_budget[{MODEL_A}].budget_duration"),
        ({MODEL_A: {"max_budget": 1, "period": "1d"}}, f"model_max_budget[{MODEL_A}]"),
        ({MODEL_A: {"max_budget": 1, "budget_limit": 2}}, f"model_max_budget[{MODEL_A}]"),
        (
            {MODEL_A: {"max_budget": 1, "budget_limits": [{"max_budget": 1}]}},
            f"model_max_budget[{MODEL_A}].budget_limits[0]",
        ),
        ({" ": DAY}, "model_max_budget[ ]"),
        ({"m" * 256: DAY}, f"model_max_budget[{'m' * 256}]"),
    ],
    ids=[
        "list",
        "bad-json-string",
        "string-value",
        "no-max-budget",
        "negative",
        "bool",
        "bad-duration",
        "unknown-field",
        "alias-twice",
        "bad-nested-window",
        "blank-model",
        "long-model",
    ],
)
async def test_model_budget_malformed_values_are_400_naming_the_field(
    admin: httpx.AsyncClient, value: object, param: str
) -> None:
    """Every malformed model_max_budget is a 400 whose param names the offending part, on keys and teams, on
    create and on update, and nothing is stored."""
    key = await new_key(admin)
    team = await new_team(admin)
    attempts = [
        ("/key/generate", {}),
        ("/key/update", {"key": key["key"]}),
        ("/team/new", {}),
        ("/team/update", {"team_id": team["team_id"]}),
    ]
    for path, body in attempts:
        error = error_of(await admin.post(path, json={**body, "model_max_budget": value}), 400, param)
        assert error["type"] == "invalid_request_error", error
    assert (await key_view(admin, key["key"]))["model_max_budget"] == {}


async def test_model_budget_litellm_forms_are_accepted(admin: httpx.AsyncClient) -> None:
    """LiteLLM's spellings: ``budget_limit``/``time_period`` (amount as a string), a bare number (a lifetime
    budget), and the whole object as a JSON string."""
    key = await new_key(admin, model_max_budget={MODEL_A: {"budget_limit": "0.5", "time_period": "1d"}, MODEL_B: 2})
    shown = key["model_max_budget"]
    assert (shown[MODEL_A]["max_budget"], shown[MODEL_A]["budget_duration"]) == (0.5, "1d")
    assert (shown[MODEL_B]["max_budget"], shown[MODEL_B]["budget_duration"]) == (2.0, None)
    team = await new_team(admin, model_max_budget=json.dumps({MODEL_A: {"max_budget": 3, "budget_duration": "1h"}}))
    assert team["model_max_budget"][MODEL_A]["max_budget"] == 3.0


async def test_model_budget_update_replaces_only_model_windows(admin: httpx.AsyncClient) -> None:
    """``budget_limits`` and ``model_max_budget`` each replace only their own windows; ``null`` removes the
    model windows; a view sent back as input is accepted unchanged."""
    key = await new_key(
        admin, budget_limits=[{"budget_duration": "1h", "max_budget": 1}], model_max_budget={MODEL_A: DAY}
    )
    updated = await post(
        admin, "/key/update", {"key": key["key"], "budget_limits": [{"budget_duration": "1w", "max_budget": 2}]}
    )
    assert [w["budget_duration"] for w in updated["budget_limits"]] == ["1w"]
    assert list(updated["model_max_budget"]) == [MODEL_A]
    sent_back = await post(admin, "/key/update", {"key": key["key"], "model_max_budget": updated["model_max_budget"]})
    assert sent_back["model_max_budget"] == updated["model_max_budget"]
    updated = await post(admin, "/key/update", {"key": key["key"], "model_max_budget": {MODEL_B: DAY}})
    assert list(updated["model_max_budget"]) == [MODEL_B]
    assert [w["budget_duration"] for w in updated["budget_limits"]] == ["1w"]
    cleared = await post(admin, "/key/update", {"key": key["key"], "model_max_budget": None})
    assert cleared["model_max_budget"] == {}
    assert [w["budget_duration"] for w in cleared["budget_limits"]] == ["1w"]
    team = await new_team(admin, model_max_budget={MODEL_A: DAY})
    team = await post(admin, "/team/update", {"team_id": team["team_id"], "max_budget": 9})
    assert (team["max_budget"], list(team["model_max_budget"])) == (9.0, [MODEL_A])
    listed = (await get(admin, "/team/info", team_id=team["team_id"]))["team_info"]
    assert listed["model_max_budget"] == team["model_max_budget"]
