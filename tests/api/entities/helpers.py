"""Builders for the entity tests: users, teams, keys and requests over real HTTP, sized in whole requests.

``FLAT_MODEL`` has free input, so one request with ``max_tokens=TOKENS`` costs exactly ``REQUEST_NANOS`` (the
fake upstream generates ``max_tokens`` tokens): a budget of ``usd(REQUEST_NANOS)`` admits one request, then
refuses (standard mode admits while spent + held < max_budget).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.gateway import FLAT_MODEL, FLAT_OUTPUT_NANOS_PER_TOKEN, GatewayServer
from tests.support.timing import HTTP_TIMEOUT_S, fresh_period_async

TOKENS = 10
REQUEST_NANOS = TOKENS * FLAT_OUTPUT_NANOS_PER_TOKEN
NANOS_PER_USD = 1_000_000_000


def usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


ONE_REQUEST = usd(REQUEST_NANOS)
PLENTY = 100.0


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def client_of(gateway: GatewayServer, secret: str | None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    # Plain HTTP to loopback: skipping the CA bundle makes a client ~40 ms cheaper, and tests make many.
    return httpx.AsyncClient(base_url=gateway.base_url, headers=headers, timeout=HTTP_TIMEOUT_S, verify=False)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, f"{response.request.url}: {response.status_code} {response.text}"
    return response.json()


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    return ok(await client.post(path, json=body))


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    return ok(await client.get(path, params=params))


def error_of(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with ``{"error": {message, type, param, code}}``; returns the error object."""
    assert response.status_code == status, f"{response.request.url}: {response.status_code} {response.text}"
    error: dict[str, Any] = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert error["code"] == str(status)
    if param is not None:
        assert error["param"] == param, error
    return error


async def new_user(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """``/user/new``: the user object plus ``key``, their personal key's secret."""
    fields.setdefault("user_id", uid("user"))
    user: dict[str, Any] = await post(admin, "/user/new", fields)
    return user


async def new_team(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    fields.setdefault("team_id", uid("team"))
    team: dict[str, Any] = await post(admin, "/team/new", fields)
    return team


async def new_key(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    key: dict[str, Any] = await post(admin, "/key/generate", fields)
    return key


async def add_member(admin: httpx.AsyncClient, team_id: str, user_id: str, role: str = "user", **extra: Any) -> None:
    await post(admin, "/team/member_add", {"team_id": team_id, "member": {"user_id": user_id, "role": role}, **extra})


async def chat(gateway: GatewayServer, secret: str, **extra: Any) -> httpx.Response:
    """One request costing exactly ``REQUEST_NANOS``."""
    body = {"model": FLAT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": TOKENS, **extra}
    async with client_of(gateway, secret) as client:
        return await client.post("/v1/chat/completions", json=body)


def refused_by(response: httpx.Response) -> tuple[str, str, str | None]:
    """``(entity, entity_id, budget_duration)`` of a 429 budget refusal."""
    error = error_of(response, 429)
    assert error["type"] == "budget_exceeded", error
    return error["entity"], error["entity_id"], error["budget_duration"]


async def clear_of_boundary(period_s: int, margin_s: float = 30.0) -> None:
    """Sleep past the next ``period_s`` boundary when it is less than ``margin_s`` (a base value, scaled: see
    tests/support/timing.py) away, so that a test using a long window (1h, 1d) never straddles a reset it does
    not expect, even on a loaded machine."""
    await fresh_period_async(period_s, needed_s=margin_s)
