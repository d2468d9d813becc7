"""Issue 12 part 4: admin input at its edges. Unknown fields, LiteLLM fields not implemented, amounts outside the
ledger's range and below its resolution, oversized JSON fields: each a 400 naming the field, never a 5xx and
never silently a different entity."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error_body, key_info, new_key
from tests.support.gateway import CHAT_MODEL

MAX_USD_TEXT = "9223372036.854775807"  # the largest amount a signed 64-bit nano-USD column holds
OUT_OF_RANGE = [1e20, 1e308, math.inf, -math.inf, math.nan, 10**30]

# Every admin route with a body, with a body it would accept (ids need not exist: the body is refused first).
ADMIN_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("/key/generate", {"key_alias": "k"}),
    ("/key/update", {"key": "sk-none"}),
    ("/key/delete", {"keys": ["sk-none"]}),
    ("/key/block", {"key": "sk-none"}),
    ("/key/unblock", {"key": "sk-none"}),
    ("/key/sk-none/reset_spend", {"reset_to": 0}),
    ("/user/new", {"user_alias": "u"}),
    ("/user/update", {"user_id": "u"}),
    ("/user/delete", {"user_ids": ["u"]}),
    ("/user/u/reset_spend", {"reset_to": 0}),
    ("/team/new", {"team_alias": "t"}),
    ("/team/update", {"team_id": "t"}),
    ("/team/delete", {"team_ids": ["t"]}),
    ("/team/block", {"team_id": "t"}),
    ("/team/unblock", {"team_id": "t"}),
    ("/team/member_add", {"team_id": "t", "member": {"user_id": "u"}}),
    ("/team/member_update", {"team_id": "t", "user_id": "u"}),
    ("/team/member_delete", {"team_id": "t", "user_id": "u"}),
    ("/team/t/reset_spend", {"reset_to": 0}),
    ("/organization/new", {"organization_alias": "o"}),
    ("/organization/update", {"organization_id": "o"}),
    ("/organization/delete", {"organization_ids": ["o"]}),
    ("/organization/o/reset_spend", {"reset_to": 0}),
    ("/customer/new", {"user_id": "c"}),
    ("/customer/update", {"user_id": "c"}),
    ("/customer/delete", {"user_ids": ["c"]}),
    ("/customer/block", {"user_ids": ["c"]}),
    ("/customer/unblock", {"user_ids": ["c"]}),
    ("/customer/c/reset_spend", {"reset_to": 0}),
    ("/tag/new", {"name": "g"}),
    ("/tag/update", {"name": "g"}),
    ("/tag/info", {"names": ["g"]}),
    ("/tag/delete", {"name": "g"}),
    ("/tag/g/reset_spend", {"reset_to": 0}),
    ("/budget/new", {"max_budget": 1}),
    ("/budget/update", {"budget_id": "b"}),
    ("/budget/info", {"budgets": ["b"]}),
    ("/budget/delete", {"budget_id": "b"}),
]


async def _post(admin: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
    """POST ``body`` as JSON with Python's literals for non-finite floats (``NaN``, ``Infinity``), which clients
    can send and Python's JSON parser accepts; httpx's ``json=`` refuses to encode them."""
    content = json.dumps(body, allow_nan=True).encode()
    return await admin.post(path, content=content, headers={"content-type": "application/json"})


def _alias() -> str:
    return f"edge-{uuid.uuid4().hex[:12]}"


async def test_max_buget_typo_bug_is_refused_instead_of_creating_an_unlimited_key(admin: httpx.AsyncClient) -> None:
    """Regression (issue 12): ``{"key_alias": "x", "max_buget": 0.01}`` created an UNLIMITED key. Now a 400 naming
    the field and the closest known one, and no key exists afterwards."""
    alias = _alias()
    response = await admin.post("/key/generate", json={"key_alias": alias, "max_buget": 0.01})
    error = assert_error_body(response, 400, "invalid_request_error")
    assert error["param"] == "max_buget"
    assert 'unknown field "max_buget" (did you mean "max_budget"?)' in error["message"]
    listed = await admin.get("/key/list", params={"key_alias": alias})
    assert listed.status_code == 200 and listed.json()["keys"] == []


@pytest.mark.parametrize(("path", "body"), ADMIN_BODIES, ids=[path for path, _ in ADMIN_BODIES])
async def test_unknown_field_is_refused_on_every_admin_body(
    admin: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    """No admin route ignores a field: each names the unknown one in ``param`` (users, teams, members, orgs,
    customers, tags, budgets, resets alike)."""
    response = await admin.post(path, json={**body, "zz_not_a_field": 1})
    error = assert_error_body(response, 400, "invalid_request_error")
    assert error["param"] == "zz_not_a_field", error
    assert 'unknown field "zz_not_a_field"' in error["message"]


async def test_unknown_field_inside_budget_limits_and_members_names_its_path(admin: httpx.AsyncClient) -> None:
    """Nested objects refuse unknown fields too: a window's typo must not become a window without a limit."""
    response = await admin.post(
        "/key/generate", json={"budget_limits": [{"budget_duration": "1d", "max_buget": 1, "max_budget": 2}]}
    )
    error = assert_error_body(response, 400)
    assert error["param"] == "budget_limits.0.max_buget", error
    assert '(did you mean "max_budget"?)' in error["message"]
    response = await admin.post("/team/new", json={"members_with_roles": [{"user_id": "u", "rol": "admin"}]})
    error = assert_error_body(response, 400)
    assert error["param"] == "members_with_roles.0.rol", error
    assert '(did you mean "role"?)' in error["message"]


@pytest.mark.parametrize(
    ("path", "field", "hint"),
    [
        ("/key/generate", "spend", "reset_spend"),
        ("/key/generate", "model_rpm_limit", "rpm_limit"),
        ("/key/update", "permissions", "models"),
        ("/team/new", "admins", "members_with_roles"),
        ("/user/new", "send_invite_email", "not implemented"),
    ],
)
async def test_litellm_field_not_implemented_says_so_and_what_to_use(
    admin: httpx.AsyncClient, path: str, field: str, hint: str
) -> None:
    """A LiteLLM field ledgergate does not implement is not 'unknown': the 400 says it is not supported and why."""
    body: dict[str, Any] = {"key": "sk-none"} if path == "/key/update" else {}
    response = await admin.post(path, json={**body, field: 1})
    error = assert_error_body(response, 400)
    assert error["param"] == field
    assert f'field "{field}" is not supported by ledgergate' in error["message"] and hint in error["message"]


async def _reset_targets(admin: httpx.AsyncClient) -> list[str]:
    """A reset route of every entity type, each on an existing entity with a budget."""
    key = await new_key(admin, max_budget=1)
    ids = {"user": f"u-{uuid.uuid4().hex[:8]}", "team": f"t-{uuid.uuid4().hex[:8]}"}
    ids |= {"organization": f"o-{uuid.uuid4().hex[:8]}", "customer": f"c-{uuid.uuid4().hex[:8]}"}
    ids["tag"] = f"g-{uuid.uuid4().hex[:8]}"
    creations = [
        ("/user/new", {"user_id": ids["user"], "max_budget": 1, "auto_create_key": False}),
        ("/team/new", {"team_id": ids["team"], "max_budget": 1}),
        ("/organization/new", {"organization_id": ids["organization"], "max_budget": 1}),
        ("/customer/new", {"user_id": ids["customer"], "max_budget": 1}),
        ("/tag/new", {"name": ids["tag"], "max_budget": 1}),
    ]
    for path, body in creations:
        response = await admin.post(path, json=body)
        assert response.status_code == 200, (path, response.text)
    return [f"/key/{key['key']}/reset_spend", *(f"/{kind}/{entity_id}/reset_spend" for kind, entity_id in ids.items())]


async def test_reset_to_1e20_bug_is_a_400_on_every_reset_route_and_the_connection_survives(
    admin: httpx.AsyncClient,
) -> None:
    """Regression (issue 12): ``reset_to: 1e20`` (and 1e308) answered 500 and reset the keep-alive connection on
    every reset route. Now each is a 400 naming reset_to and the ledger's range, and the same connection goes on."""
    for path in await _reset_targets(admin):
        for value in (1e20, 1e308, 10**30):
            response = await admin.post(path, json={"reset_to": value})
            error = assert_error_body(response, 400, "invalid_request_error")
            assert error["param"] == "reset_to", (path, error)
            assert MAX_USD_TEXT in error["message"], error
        for value in (math.inf, math.nan):  # JSON's Infinity / NaN literals, which Python's parser accepts
            response = await _post(admin, path, {"reset_to": value})
            assert assert_error_body(response, 400)["param"] == "reset_to", path
        assert (await admin.post(path, json={"reset_to": 0})).status_code == 200, path


@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=repr)
@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/key/generate", {"max_budget": "VALUE"}, "max_budget"),
        ("/key/generate", {"max_budget": 1, "soft_budget": "VALUE"}, "soft_budget"),
        ("/key/generate", {"budget_limits": [{"budget_duration": "1d", "max_budget": "VALUE"}]}, "budget_limits"),
        ("/key/generate", {"model_max_budget": {CHAT_MODEL: {"max_budget": "VALUE"}}}, "model_max_budget"),
        ("/team/new", {"max_budget": "VALUE"}, "max_budget"),
        ("/user/new", {"max_budget": "VALUE", "auto_create_key": False}, "max_budget"),
        ("/budget/new", {"max_budget": "VALUE"}, "max_budget"),
        ("/customer/new", {"user_id": "c-range", "max_budget": "VALUE"}, "max_budget"),
    ],
)
async def test_amount_outside_the_ledger_range_is_a_400_naming_the_field(
    admin: httpx.AsyncClient, path: str, body: dict[str, Any], param: str, value: float
) -> None:
    """Every money field refuses amounts the nano-USD columns cannot hold (and inf/NaN) with a 400 naming it."""

    def substitute(item: Any) -> Any:
        if item == "VALUE":
            return value
        if isinstance(item, dict):
            return {name: substitute(inner) for name, inner in item.items()}
        if isinstance(item, list):
            return [substitute(inner) for inner in item]
        return item

    response = await _post(admin, path, substitute(body))
    error = assert_error_body(response, 400, "invalid_request_error")
    assert str(error["param"]).startswith(param), error


async def test_max_budget_in_team_out_of_range_is_a_400(admin: httpx.AsyncClient) -> None:
    """The team member's own limit is money too."""
    team_id = f"t-{uuid.uuid4().hex[:8]}"
    assert (await admin.post("/team/new", json={"team_id": team_id})).status_code == 200
    for value in (1e20, math.nan):
        response = await _post(
            admin, "/team/member_add", {"team_id": team_id, "member": {"user_id": "m"}, "max_budget_in_team": value}
        )
        assert assert_error_body(response, 400)["param"] == "max_budget_in_team"


async def test_sub_nano_budget_bug_5e_10_is_rounded_up_to_one_nano_not_down_to_zero(admin: httpx.AsyncClient) -> None:
    """Regression (issue 12): ``max_budget: 5e-10`` was rounded to 0, a positive budget that refuses everything.
    It is now 1 nano-USD (SPEC 2: a positive amount never becomes zero; budgets round up)."""
    key = await new_key(admin, max_budget=5e-10, budget_limits=[{"budget_duration": "1d", "max_budget": 1.5e-9}])
    info = await key_info(admin, key["key"])
    assert info["max_budget"] == 1e-9
    assert info["budget_limits"][0]["max_budget"] == 2e-9
    largest = await new_key(admin, max_budget=9223372036)
    assert (await key_info(admin, largest["key"]))["max_budget"] == 9223372036


async def test_metadata_over_the_field_cap_is_refused(admin: httpx.AsyncClient) -> None:
    """Regression (issue 12): a team admin stored 20 MB of metadata per key. One JSON field holds at most 64 KiB."""
    response = await admin.post("/key/generate", json={"metadata": {"blob": "x" * 70_000}})
    error = assert_error_body(response, 400)
    assert error["param"] == "metadata" and "at most 65536" in error["message"]
    assert (await admin.post("/key/generate", json={"metadata": {"blob": "x" * 60_000}})).status_code == 200


async def test_many_or_huge_unknown_fields_get_a_short_answer_fast(admin: httpx.AsyncClient) -> None:
    """Attack: 50,000 unknown fields, or one field name of 500 KB, in one body. The 400 names the first five (and
    counts the rest) and echoes at most 64 characters of a name: no megabyte answer, no fuzzy match of each."""
    many = {f"field{index}": 1 for index in range(50_000)}
    response = await admin.post("/key/generate", json=many)
    error = assert_error_body(response, 400)
    assert error["param"] == "field0" and "and 49995 more unknown fields" in error["message"]
    assert len(response.content) < 2000
    huge = "n" * 500_000
    response = await admin.post("/key/generate", json={huge: 1})
    error = assert_error_body(response, 400)
    assert error["param"] == "n" * 64 and len(response.content) < 1000
