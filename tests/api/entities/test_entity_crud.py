"""Create / info / update / list / delete of users, teams, organizations, customers, tags and budgets, with
LiteLLM's paths and shapes: unknown ids 404, existing ids 409, missing references 404, every object carrying
its budget fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.entities.helpers import error_of, get, post, uid

BUDGET_FIELDS = {
    "spend",
    "lifetime_spend",
    "max_budget",
    "budget_duration",
    "budget_reset_at",
    "budget_limits",
    "soft_budget",
}


@dataclass(frozen=True)
class Resource:
    name: str
    id_field: str
    info: str  # query parameter of GET /<name>/info
    delete_field: str
    delete_as_list: bool = True
    update_method: str = "POST"
    wrapped: str | None = None  # the info response nests the object under this key

    def new_body(self, entity_id: str, **fields: Any) -> dict[str, Any]:
        return {self.id_field: entity_id, **fields}

    def delete_body(self, entity_id: str) -> dict[str, Any]:
        return {self.delete_field: [entity_id] if self.delete_as_list else entity_id}

    async def info_of(self, admin: httpx.AsyncClient, entity_id: str) -> httpx.Response:
        return await admin.get(f"/{self.name}/info", params={self.info: entity_id})

    def unwrap(self, body: Any) -> dict[str, Any]:
        return body[self.wrapped] if self.wrapped else body


RESOURCES = [
    Resource("user", "user_id", "user_id", "user_ids", wrapped="user_info"),
    Resource("team", "team_id", "team_id", "team_ids", wrapped="team_info"),
    Resource("organization", "organization_id", "organization_id", "organization_ids", update_method="PATCH"),
    Resource("customer", "user_id", "end_user_id", "user_ids"),
    Resource("tag", "name", "name", "name", delete_as_list=False),
    Resource("budget", "budget_id", "budget_id", "budget_id", delete_as_list=False),
]
IDS = [r.name for r in RESOURCES]


def _listed(resource: Resource, body: Any) -> list[str]:
    items = body["users"] if resource.name == "user" else body
    return [item[resource.id_field] for item in items]


@pytest.mark.parametrize("resource", RESOURCES, ids=IDS)
async def test_entity_crud_lifecycle_with_budget_fields(admin: httpx.AsyncClient, resource: Resource) -> None:
    """new -> info -> update -> list -> delete; every object shows spend, max_budget, budget_duration,
    budget_reset_at, budget_limits (with spend and reset_at), soft_budget and lifetime_spend."""
    entity_id = uid(resource.name)
    windows = [{"budget_duration": "1d", "max_budget": 5}]
    created = await post(
        admin,
        f"/{resource.name}/new",
        resource.new_body(entity_id, max_budget=10, budget_duration="30d", budget_limits=windows, soft_budget=8),
    )
    assert created[resource.id_field] == entity_id
    assert set(created) >= BUDGET_FIELDS
    assert (created["max_budget"], created["budget_duration"], created["soft_budget"]) == (10, "30d", 8)
    (window,) = created["budget_limits"]
    assert (window["budget_duration"], window["max_budget"], window["spend"]) == ("1d", 5, 0)
    assert isinstance(window["reset_at"], str) and isinstance(created["budget_reset_at"], str)

    info = resource.unwrap((await resource.info_of(admin, entity_id)).json())
    assert info[resource.id_field] == entity_id and set(info) >= BUDGET_FIELDS

    response = await admin.request(
        resource.update_method,
        f"/{resource.name}/update",
        json={resource.id_field: entity_id, "max_budget": 20, "budget_limits": []},
    )
    updated = response.json()
    assert response.status_code == 200, updated
    assert (updated["max_budget"], updated["budget_duration"], updated["budget_limits"]) == (20, "30d", [])

    assert entity_id in _listed(resource, await get(admin, f"/{resource.name}/list"))
    await post(admin, f"/{resource.name}/delete", resource.delete_body(entity_id))
    error_of(await resource.info_of(admin, entity_id), 404, resource.id_field)
    error_of(await admin.post(f"/{resource.name}/delete", json=resource.delete_body(entity_id)), 404)


@pytest.mark.parametrize("resource", RESOURCES, ids=IDS)
async def test_entity_crud_existing_id_is_409_and_unknown_id_404(admin: httpx.AsyncClient, resource: Resource) -> None:
    """Creating an id twice is a 409 (the first stays as it was); updating or reading an unknown id is a 404."""
    entity_id = uid(resource.name)
    await post(admin, f"/{resource.name}/new", resource.new_body(entity_id, max_budget=1))
    error_of(await admin.post(f"/{resource.name}/new", json=resource.new_body(entity_id, max_budget=2)), 409)
    assert resource.unwrap((await resource.info_of(admin, entity_id)).json())["max_budget"] == 1
    missing = uid("missing")
    update = await admin.request(
        resource.update_method, f"/{resource.name}/update", json={resource.id_field: missing, "max_budget": 1}
    )
    error_of(update, 404)
    error_of(await resource.info_of(admin, missing), 404)


@pytest.mark.parametrize("resource", [r for r in RESOURCES if r.name != "budget"], ids=IDS[:-1])
async def test_entity_crud_unknown_budget_id_is_404_and_a_shared_budget_applies(
    admin: httpx.AsyncClient, resource: Resource
) -> None:
    """``budget_id`` must name an existing budget object (404 naming the field); once linked, the budget's
    windows show in the entity's view, and updating the budget changes them at once."""
    error_of(
        await admin.post(f"/{resource.name}/new", json=resource.new_body(uid("x"), budget_id="no-such-budget")),
        404,
        "budget_id",
    )
    budget = await post(admin, "/budget/new", {"max_budget": 3, "budget_duration": "1d"})
    entity_id = uid(resource.name)
    created = await post(admin, f"/{resource.name}/new", resource.new_body(entity_id, budget_id=budget["budget_id"]))
    assert (created["budget_id"], created["max_budget"], created["budget_duration"]) == (budget["budget_id"], 3, "1d")
    await post(admin, "/budget/update", {"budget_id": budget["budget_id"], "max_budget": 4})
    info = resource.unwrap((await resource.info_of(admin, entity_id)).json())
    assert info["max_budget"] == 4
    error = error_of(await admin.post("/budget/delete", json={"budget_id": budget["budget_id"]}), 400, "budget_id")
    assert entity_id in error["message"]


async def test_entity_crud_budget_delete_accepts_litellm_id_field(admin: httpx.AsyncClient) -> None:
    """LiteLLM deletes a budget with ``{"id": ...}``; an unused budget is deleted."""
    budget = await post(admin, "/budget/new", {"budget_id": uid("budget"), "max_budget": 1})
    assert await post(admin, "/budget/delete", {"id": budget["budget_id"]}) == {
        "deleted_budgets": [budget["budget_id"]]
    }
    error_of(await admin.get("/budget/info", params={"budget_id": budget["budget_id"]}), 404)


async def test_entity_crud_post_info_forms_of_tags_and_budgets(admin: httpx.AsyncClient) -> None:
    """LiteLLM's ``POST /tag/info {names}`` (a map by name) and ``POST /budget/info {budgets}`` (a list)."""
    tags = [uid("tag"), uid("tag")]
    for name in tags:
        await post(admin, "/tag/new", {"name": name, "description": "for tests"})
    by_name = await post(admin, "/tag/info", {"names": tags})
    assert sorted(by_name) == sorted(tags) and by_name[tags[0]]["description"] == "for tests"
    budget = await post(admin, "/budget/new", {"max_budget": 2})
    (shown,) = await post(admin, "/budget/info", {"budgets": [budget["budget_id"]]})
    assert (shown["budget_id"], shown["max_budget"]) == (budget["budget_id"], 2)
    error_of(await admin.post("/tag/info", json={"names": [tags[0], "no-such-tag"]}), 404)


async def test_entity_crud_generated_ids_and_litellm_aliases(admin: httpx.AsyncClient) -> None:
    """Users, teams, organizations and budgets get an id when none is sent; aliases use LiteLLM's names."""
    user = await post(admin, "/user/new", {"user_alias": "Ada", "user_email": "ada@example.com"})
    team = await post(admin, "/team/new", {"team_alias": "Core"})
    org = await post(admin, "/organization/new", {"organization_alias": "Acme"})
    customer = await post(admin, "/customer/new", {"user_id": uid("c"), "alias": "Client"})
    assert all(
        isinstance(obj[field], str) and obj[field]
        for obj, field in ((user, "user_id"), (team, "team_id"), (org, "organization_id"))
    )
    assert (user["user_alias"], user["user_email"], user["user_role"]) == ("Ada", "ada@example.com", "internal_user")
    assert (team["team_alias"], org["organization_alias"], customer["alias"]) == ("Core", "Acme", "Client")
    assert user["key"].startswith("sk-") and user["token"]


async def test_entity_crud_user_info_and_list_shapes(admin: httpx.AsyncClient) -> None:
    """``/user/info`` is ``{user_id, user_info, keys, teams}``; ``/user/list`` pages and filters by role."""
    viewer = await post(admin, "/user/new", {"user_id": uid("viewer"), "user_role": "proxy_admin_viewer"})
    team = await post(admin, "/team/new", {"team_id": uid("team")})
    await post(admin, "/team/member_add", {"team_id": team["team_id"], "member": {"user_id": viewer["user_id"]}})
    info = await get(admin, "/user/info", user_id=viewer["user_id"])
    assert set(info) == {"user_id", "user_info", "keys", "teams"}
    assert [k["token"] for k in info["keys"]] == [viewer["token"]]
    assert [t["team_id"] for t in info["teams"]] == [team["team_id"]]
    assert info["user_info"]["teams"] == [team["team_id"]] and "key" not in info["keys"][0]
    listed = await get(admin, "/user/list", role="proxy_admin_viewer", page_size=1000)
    assert viewer["user_id"] in [u["user_id"] for u in listed["users"]]
    assert all(u["user_role"] == "proxy_admin_viewer" for u in listed["users"])
    assert listed["total"] == len(listed["users"]) and listed["page"] == 1
    only = await get(admin, "/user/list", user_ids=f"{viewer['user_id']},nobody")
    assert [u["user_id"] for u in only["users"]] == [viewer["user_id"]]


async def test_entity_crud_user_new_without_key_and_with_teams(admin: httpx.AsyncClient) -> None:
    """``auto_create_key: false`` issues no key; ``teams`` joins the user to each team (role user); an unknown
    team refuses the whole request (404) and creates nothing."""
    team = await post(admin, "/team/new", {})
    user = await post(admin, "/user/new", {"auto_create_key": False, "teams": [team["team_id"]]})
    assert "key" not in user and user["teams"] == [team["team_id"]]
    members = (await get(admin, "/team/info", team_id=team["team_id"]))["team_info"]["members_with_roles"]
    assert [(m["user_id"], m["role"]) for m in members] == [(user["user_id"], "user")]
    user_id = uid("user")
    error_of(await admin.post("/user/new", json={"user_id": user_id, "teams": ["no-such-team"]}), 404)
    error_of(await admin.get("/user/info", params={"user_id": user_id}), 404)


async def test_entity_crud_organization_delete_is_refused_while_teams_belong_to_it(admin: httpx.AsyncClient) -> None:
    """Deleting an organization that teams still belong to is a 400 naming them (their organization limits
    would silently vanish); once the team leaves, it is deleted. A team's unknown organization is a 404."""
    org = await post(admin, "/organization/new", {})
    team = await post(admin, "/team/new", {"organization_id": org["organization_id"]})
    info = await get(admin, "/organization/info", organization_id=org["organization_id"])
    assert [t["team_id"] for t in info["teams"]] == [team["team_id"]]
    error = error_of(
        await admin.post("/organization/delete", json={"organization_ids": [org["organization_id"]]}),
        400,
        "organization_id",
    )
    assert team["team_id"] in error["message"]
    await post(admin, "/team/update", {"team_id": team["team_id"], "organization_id": None})
    await post(admin, "/organization/delete", {"organization_ids": [org["organization_id"]]})
    error_of(await admin.post("/team/new", json={"organization_id": "no-such-org"}), 404, "organization_id")
