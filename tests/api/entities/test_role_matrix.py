"""Every admin endpoint x every role -> the expected 2xx/401/403, and no admin endpoint left out of the matrix.

Roles: the master key; keys of users with ``user_role`` proxy_admin, proxy_admin_viewer and internal_user; an
internal user who is an admin of the target's team; and no key at all. Each call gets a fresh target (created
with the master key), so that a 2xx is a real success and not an accident of an earlier cell.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.entities.helpers import add_member, client_of, get, new_key, new_team, new_user, post, uid
from tests.support.gateway import MASTER_KEY, GatewayServer
from tests.support.timing import HTTP_TIMEOUT_S

ROLES = ("master", "proxy_admin", "viewer", "internal", "team_admin", "none")
WRITE = {"master": 200, "proxy_admin": 200, "viewer": 403, "internal": 403, "team_admin": 403, "none": 401}
READ = {**WRITE, "viewer": 200}
TEAM_WRITE = {**WRITE, "team_admin": 200}  # the caller is an admin of the target's team
TEAM_READ = {**READ, "team_admin": 200}
OWN = {**READ, "internal": 200, "team_admin": 200}  # every caller reads its own


@dataclass
class Ctx:
    admin: httpx.AsyncClient
    secrets: dict[str, str | None]
    users: dict[str, str | None]
    clients: dict[str, httpx.AsyncClient]

    async def team(self) -> str:
        """A fresh team whose admin is the ``team_admin`` role's user."""
        team_id = str((await new_team(self.admin))["team_id"])
        await add_member(self.admin, team_id, str(self.users["team_admin"]), "admin")
        return team_id

    async def user(self) -> str:
        return str((await new_user(self.admin, auto_create_key=False))["user_id"])

    async def named(self, path: str, body: dict[str, Any], id_field: str) -> str:
        return str((await post(self.admin, path, body))[id_field])


Call = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments
Factory = Callable[[Ctx, str], Awaitable[Call]]


async def _own_user(ctx: Ctx, role: str) -> Call:
    return "GET", "/user/info", {"params": {"user_id": ctx.users[role] or await ctx.user()}}


async def _own_key(ctx: Ctx, role: str) -> Call:
    params = {} if ctx.users[role] else {"key": (await new_key(ctx.admin))["token"]}
    return "GET", "/key/info", {"params": params}


async def _member(ctx: Ctx, role: str, path: str, body: dict[str, Any]) -> Call:
    team_id, user_id = await ctx.team(), await ctx.user()
    await add_member(ctx.admin, team_id, user_id)
    return "POST", path, {"json": {"team_id": team_id, "user_id": user_id, **body}}


async def _tag(ctx: Ctx) -> str:
    return await ctx.named("/tag/new", {"name": uid("tag")}, "name")


async def _budget(ctx: Ctx) -> str:
    return await ctx.named("/budget/new", {"max_budget": 1}, "budget_id")


async def _org(ctx: Ctx) -> str:
    return await ctx.named("/organization/new", {}, "organization_id")


async def _customer(ctx: Ctx) -> str:
    return await ctx.named("/customer/new", {"user_id": uid("customer")}, "user_id")


async def _team_key(ctx: Ctx) -> str:
    return str((await new_key(ctx.admin, team_id=await ctx.team()))["token"])


ENDPOINTS: dict[tuple[str, str], tuple[Factory, dict[str, int]]] = {
    # users
    ("POST", "/user/new"): (lambda c, r: _ready("POST", "/user/new", json={"user_id": uid("u")}), WRITE),
    ("POST", "/user/update"): (lambda c, r: _with(c.user(), "POST", "/user/update", "user_id", max_budget=1), WRITE),
    ("GET", "/user/info"): (lambda c, r: _with_q(c.user(), "/user/info", "user_id"), READ),
    ("GET", "/user/info#own"): (_own_user, OWN),
    ("GET", "/user/list"): (lambda c, r: _ready("GET", "/user/list"), READ),
    ("POST", "/user/delete"): (lambda c, r: _with_list(c.user(), "/user/delete", "user_ids"), WRITE),
    ("POST", "/user/{user_id}/reset_spend"): (lambda c, r: _reset(c.user(), "/user/{}/reset_spend"), WRITE),
    # teams
    ("POST", "/team/new"): (lambda c, r: _ready("POST", "/team/new", json={}), WRITE),
    ("POST", "/team/update"): (lambda c, r: _with(c.team(), "POST", "/team/update", "team_id", max_budget=1), WRITE),
    ("GET", "/team/info"): (lambda c, r: _with_q(c.team(), "/team/info", "team_id"), TEAM_READ),
    ("GET", "/team/list"): (lambda c, r: _ready("GET", "/team/list"), OWN),
    ("POST", "/team/delete"): (lambda c, r: _with_list(c.team(), "/team/delete", "team_ids"), WRITE),
    ("POST", "/team/block"): (lambda c, r: _with(c.team(), "POST", "/team/block", "team_id"), WRITE),
    ("POST", "/team/unblock"): (lambda c, r: _with(c.team(), "POST", "/team/unblock", "team_id"), WRITE),
    ("POST", "/team/member_add"): (
        lambda c, r: _with(c.team(), "POST", "/team/member_add", "team_id", member={"user_id": uid("new")}),
        TEAM_WRITE,
    ),
    ("POST", "/team/member_update"): (
        lambda c, r: _member(c, r, "/team/member_update", {"max_budget_in_team": 1}),
        TEAM_WRITE,
    ),
    ("POST", "/team/member_delete"): (lambda c, r: _member(c, r, "/team/member_delete", {}), TEAM_WRITE),
    # A team admin cannot lift their own team's budget (issue 12).
    ("POST", "/team/{team_id}/reset_spend"): (lambda c, r: _reset(c.team(), "/team/{}/reset_spend"), WRITE),
    # organizations
    ("POST", "/organization/new"): (lambda c, r: _ready("POST", "/organization/new", json={}), WRITE),
    ("PATCH", "/organization/update"): (
        lambda c, r: _with(_org(c), "PATCH", "/organization/update", "organization_id", max_budget=1),
        WRITE,
    ),
    ("POST", "/organization/update"): (
        lambda c, r: _with(_org(c), "POST", "/organization/update", "organization_id", max_budget=1),
        WRITE,
    ),
    ("GET", "/organization/info"): (lambda c, r: _with_q(_org(c), "/organization/info", "organization_id"), READ),
    ("GET", "/organization/list"): (lambda c, r: _ready("GET", "/organization/list"), READ),
    ("POST", "/organization/delete"): (
        lambda c, r: _with_list(_org(c), "/organization/delete", "organization_ids"),
        WRITE,
    ),
    ("POST", "/organization/{organization_id}/reset_spend"): (
        lambda c, r: _reset(_org(c), "/organization/{}/reset_spend"),
        WRITE,
    ),
    # customers
    ("POST", "/customer/new"): (lambda c, r: _ready("POST", "/customer/new", json={"user_id": uid("c")}), WRITE),
    ("POST", "/customer/update"): (
        lambda c, r: _with(_customer(c), "POST", "/customer/update", "user_id", max_budget=1),
        WRITE,
    ),
    ("GET", "/customer/info"): (lambda c, r: _with_q(_customer(c), "/customer/info", "end_user_id"), READ),
    ("GET", "/customer/list"): (lambda c, r: _ready("GET", "/customer/list"), READ),
    ("POST", "/customer/delete"): (lambda c, r: _with_list(_customer(c), "/customer/delete", "user_ids"), WRITE),
    ("POST", "/customer/block"): (lambda c, r: _with_list(_customer(c), "/customer/block", "user_ids"), WRITE),
    ("POST", "/customer/unblock"): (lambda c, r: _with_list(_customer(c), "/customer/unblock", "user_ids"), WRITE),
    ("POST", "/customer/{customer_id}/reset_spend"): (
        lambda c, r: _reset(_customer(c), "/customer/{}/reset_spend"),
        WRITE,
    ),
    # tags
    ("POST", "/tag/new"): (lambda c, r: _ready("POST", "/tag/new", json={"name": uid("t")}), WRITE),
    ("POST", "/tag/update"): (lambda c, r: _with(_tag(c), "POST", "/tag/update", "name", max_budget=1), WRITE),
    ("GET", "/tag/info"): (lambda c, r: _with_q(_tag(c), "/tag/info", "name"), READ),
    ("POST", "/tag/info"): (lambda c, r: _with_list(_tag(c), "/tag/info", "names"), READ),
    ("GET", "/tag/list"): (lambda c, r: _ready("GET", "/tag/list"), READ),
    ("POST", "/tag/delete"): (lambda c, r: _with(_tag(c), "POST", "/tag/delete", "name"), WRITE),
    ("POST", "/tag/{name}/reset_spend"): (lambda c, r: _reset(_tag(c), "/tag/{}/reset_spend"), WRITE),
    # shared budgets
    ("POST", "/budget/new"): (lambda c, r: _ready("POST", "/budget/new", json={"max_budget": 1}), WRITE),
    ("POST", "/budget/update"): (
        lambda c, r: _with(_budget(c), "POST", "/budget/update", "budget_id", max_budget=2),
        WRITE,
    ),
    ("GET", "/budget/info"): (lambda c, r: _with_q(_budget(c), "/budget/info", "budget_id"), READ),
    ("POST", "/budget/info"): (lambda c, r: _with_list(_budget(c), "/budget/info", "budgets"), READ),
    ("GET", "/budget/list"): (lambda c, r: _ready("GET", "/budget/list"), READ),
    ("POST", "/budget/delete"): (lambda c, r: _with(_budget(c), "POST", "/budget/delete", "budget_id"), WRITE),
    # keys
    ("POST", "/key/generate"): (lambda c, r: _with(c.team(), "POST", "/key/generate", "team_id"), TEAM_WRITE),
    ("POST", "/key/update"): (lambda c, r: _with(_team_key(c), "POST", "/key/update", "key", max_budget=1), TEAM_WRITE),
    ("GET", "/key/info"): (lambda c, r: _with_q(_team_key(c), "/key/info", "key"), READ),
    ("GET", "/key/info#own"): (_own_key, OWN),
    ("GET", "/key/list"): (lambda c, r: _ready("GET", "/key/list"), OWN),
    ("POST", "/key/delete"): (lambda c, r: _with_list(_team_key(c), "/key/delete", "keys"), TEAM_WRITE),
    ("POST", "/key/block"): (lambda c, r: _with(_team_key(c), "POST", "/key/block", "key"), TEAM_WRITE),
    ("POST", "/key/unblock"): (lambda c, r: _with(_team_key(c), "POST", "/key/unblock", "key"), TEAM_WRITE),
    ("POST", "/key/{key}/reset_spend"): (lambda c, r: _reset(_team_key(c), "/key/{}/reset_spend"), TEAM_WRITE),
    # spend
    ("GET", "/spend/logs"): (lambda c, r: _ready("GET", "/spend/logs"), READ),
    ("GET", "/spend/adjustments"): (lambda c, r: _ready("GET", "/spend/adjustments"), READ),
    ("GET", "/spend/report"): (lambda c, r: _ready("GET", "/spend/report", params={"group_by": "team"}), READ),
    # alerts
    ("GET", "/alerts"): (lambda c, r: _ready("GET", "/alerts"), READ),
}


async def _ready(method: str, path: str, **kwargs: Any) -> Call:
    return method, path, kwargs


async def _with(target: Awaitable[str], method: str, path: str, field: str, **body: Any) -> Call:
    return method, path, {"json": {field: await target, **body}}


async def _with_q(target: Awaitable[str], path: str, param: str) -> Call:
    return "GET", path, {"params": {param: await target}}


async def _with_list(target: Awaitable[str], path: str, field: str) -> Call:
    return "POST", path, {"json": {field: [await target]}}


async def _reset(target: Awaitable[str], path: str) -> Call:
    return "POST", path.format(await target), {"json": {"reset_to": 0}}


@pytest.fixture(scope="module")
def ctx_secrets(gateway: GatewayServer) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """One user (and personal key) per role, shared by the module (sync: module-scoped async fixtures would need
    a module-scoped event loop)."""
    secrets: dict[str, str | None] = {"master": MASTER_KEY, "none": None}
    users: dict[str, str | None] = {"master": None, "none": None}
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    with httpx.Client(base_url=gateway.base_url, headers=headers, timeout=HTTP_TIMEOUT_S) as admin:
        for role, user_role in (
            ("proxy_admin", "proxy_admin"),
            ("viewer", "proxy_admin_viewer"),
            ("internal", "internal_user"),
            ("team_admin", "internal_user"),
        ):
            response = admin.post("/user/new", json={"user_id": uid(role), "user_role": user_role})
            assert response.status_code == 200, response.text
            secrets[role], users[role] = response.json()["key"], response.json()["user_id"]
    return secrets, users


@pytest.fixture
async def role_clients(
    gateway: GatewayServer, ctx_secrets: tuple[dict[str, str | None], dict[str, str | None]]
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    secrets, _ = ctx_secrets
    async with contextlib.AsyncExitStack() as stack:
        yield {role: await stack.enter_async_context(client_of(gateway, secrets[role])) for role in ROLES}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS), ids=[f"{m} {p}" for m, p in ENDPOINTS])
async def test_role_matrix_every_admin_endpoint_answers_each_role_as_expected(
    gateway: GatewayServer,
    admin: httpx.AsyncClient,
    ctx_secrets: tuple[dict[str, str | None], dict[str, str | None]],
    role_clients: dict[str, httpx.AsyncClient],
    endpoint: tuple[str, str],
) -> None:
    """Proxy admins may do everything, viewers read only, internal users read their own, team admins manage
    their team's plain members and keys (not the team's own spend); a missing key is a 401, every refusal a 403
    with an error body."""
    factory, expected = ENDPOINTS[endpoint]
    ctx = Ctx(admin, *ctx_secrets, role_clients)
    method, path = endpoint
    mutating = method != "GET" and not path.endswith("/info")
    shared: Call | None = None  # a refused call changes nothing, so refused roles may share one target
    got = {}
    for role in ROLES:
        if (mutating and expected[role] < 300) or "#own" in path:
            call = await factory(ctx, role)
        else:
            shared = shared or await factory(ctx, role)
            call = shared
        response = await ctx.clients[role].request(call[0], call[1], **call[2])
        got[role] = response.status_code
        if response.status_code >= 400:
            assert set(response.json()["error"]) >= {"message", "type", "param", "code"}, response.text
    assert got == expected


async def test_role_matrix_covers_every_admin_route(admin: httpx.AsyncClient) -> None:
    """A new admin route must get a row in the matrix: an unlisted route is an unchecked authorization."""
    schema = await get(admin, "/openapi.json")
    routes = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    listed = {(method, path.split("#")[0]) for method, path in ENDPOINTS}
    assert routes - listed == set(), "admin routes missing from the role matrix"
    assert listed - routes == set(), "matrix rows for routes that do not exist"
