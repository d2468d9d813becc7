"""Bad input to the entity endpoints: a 400 with ``{"error": {...}}`` naming the field, never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.entities.helpers import error_of, uid


def _without_union_tags(param: str) -> str:
    """The field path without pydantic's union member tags (``max_budget.float`` -> ``max_budget``).

    api/errors.py reports the tags as part of the field name; the field itself is what a client needs.
    """
    return ".".join(part for part in param.split(".") if part not in {"float", "int", "str"} and "[" not in part)


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("/user/new", {"user_role": "superuser"}, "user_role"),
    ("/user/new", {"user_id": "a/b"}, "user_id"),
    ("/user/new", {"user_id": ""}, "user_id"),
    ("/user/new", {"user_id": "x" * 121}, "user_id"),
    ("/user/new", {"models": "gpt-4o"}, "models"),
    ("/user/new", {"max_budget": True}, "max_budget"),
    ("/user/update", {"max_budget": 1}, "user_id"),
    ("/user/delete", {"user_ids": []}, "user_ids"),
    ("/team/new", {"team_id": "bad\x00id"}, "team_id"),
    ("/team/new", {"tags": [1, 2]}, "tags.0"),
    ("/team/new", {"blocked": "maybe"}, "blocked"),
    ("/team/new", {"members_with_roles": [{"user_id": "u", "role": "owner"}]}, "members_with_roles.0.role"),
    ("/team/member_add", {"team_id": "t"}, "member"),
    ("/team/member_update", {"team_id": "t", "role": "boss"}, "role"),
    ("/organization/new", {"metadata": [1]}, "metadata"),
    ("/customer/new", {"alias": "no id"}, "user_id"),
    ("/tag/new", {"name": "t", "soft_budget": -1}, "soft_budget"),
    ("/tag/new", {}, "name"),
    ("/budget/new", {"max_budget": "NaN"}, "max_budget"),
    ("/budget/new", {"budget_limits": [{"budget_duration": "1h"}]}, "budget_limits.0.max_budget"),
    ("/budget/delete", {}, "budget_id"),
]


@pytest.mark.parametrize(("path", "body", "param"), CASES, ids=[f"{p} {param}" for p, _, param in CASES])
async def test_validation_bad_fields_are_400_naming_the_field(
    admin: httpx.AsyncClient, path: str, body: dict[str, Any], param: str
) -> None:
    """Wrong types, unknown roles, ids that no database could store and missing required fields: 400, with
    ``param`` naming the offending field."""
    error = error_of(await admin.post(path, json=body), 400)
    assert _without_union_tags(error["param"]) == param, error
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "path",
    [
        "/user/info?user_id=%00",
        "/team/info",
        "/team/info?team_id=" + "x" * 300,
        "/customer/info",
        "/tag/info",
        "/budget/info",
        "/organization/info",
        "/user/list?page=0",
        "/user/list?page_size=5000",
    ],
)
async def test_validation_bad_query_parameters_are_400(admin: httpx.AsyncClient, path: str) -> None:
    """Missing, oversized or control-character ids and out-of-range paging are 400s, not 404s or 5xx."""
    error_of(await admin.get(path), 400)


async def test_validation_malformed_json_and_unknown_member_role_are_400(admin: httpx.AsyncClient) -> None:
    """A body that is not JSON is a 400; a master-key ``/user/info`` without ``user_id`` names the field."""
    error_of(await admin.post("/team/new", content=b"{not json", headers={"content-type": "application/json"}), 400)
    error_of(await admin.get("/user/info"), 400, "user_id")
    error_of(await admin.post(f"/tag/{uid('t')}/reset_spend", json={"reset_to": 0, "budget_duration": "1x"}), 404)
