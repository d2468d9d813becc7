"""Clients of the gateway processes: admin calls and LLM requests, with what each request came back with."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.cluster import FLAT_MODEL, MASTER_KEY, MAX_TOKENS, GatewayProcess, nanos
from tests.support.timing import HTTP_TIMEOUT_S

ADMIN_HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}


def http_client(connections: int = 300) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, limits=limits)


@dataclass(frozen=True)
class Outcome:
    instance: str
    status: int  # 0: no HTTP answer (connection refused or reset: the instance is down)
    request_id: str | None
    cost_nanos: int | None
    body: dict[str, Any]


async def chat(http: httpx.AsyncClient, instance: GatewayProcess, secret: str, model: str = FLAT_MODEL) -> Outcome:
    body = {"model": model, "messages": [{"role": "user", "content": "hello e2e"}], "max_tokens": MAX_TOKENS}
    try:
        response = await http.post(
            f"{instance.base_url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"}
        )
    except httpx.TransportError:
        return Outcome(instance.name, 0, None, None, {})
    cost = response.headers.get("x-ledgergate-cost-nanos")
    return Outcome(
        instance.name,
        response.status_code,
        response.headers.get("x-ledgergate-request-id"),
        int(cost) if cost is not None else None,
        response.json() if response.headers.get("content-type", "").startswith("application/json") else {},
    )


async def admin_post(
    http: httpx.AsyncClient, instance: GatewayProcess, path: str, body: dict[str, Any]
) -> tuple[dict[str, Any], float]:
    """POST an admin call; returns the JSON answer and how long the call took (seconds)."""
    started = time.monotonic()
    response = await http.post(f"{instance.base_url}{path}", json=body, headers=ADMIN_HEADERS)
    elapsed_s = time.monotonic() - started
    assert response.status_code == 200, f"{path} on {instance.name}: {response.status_code} {response.text}"
    answer: dict[str, Any] = response.json()
    return answer, elapsed_s


async def admin_get(http: httpx.AsyncClient, instance: GatewayProcess, path: str, **params: str) -> dict[str, Any]:
    response = await http.get(f"{instance.base_url}{path}", params=params, headers=ADMIN_HEADERS)
    assert response.status_code == 200, f"{path} on {instance.name}: {response.status_code} {response.text}"
    answer: dict[str, Any] = response.json()
    return answer


async def new_key(http: httpx.AsyncClient, instance: GatewayProcess, **fields: Any) -> tuple[str, str]:
    """``(secret, token)`` of a new key; the token (its hash) is the key id of its ledger records."""
    created, _ = await admin_post(http, instance, "/key/generate", fields)
    return str(created["key"]), str(created["token"])


async def key_spend_nanos(http: httpx.AsyncClient, instance: GatewayProcess, secret: str) -> int:
    """The key's spend as the instance enforces it (its primary window's counter)."""
    info = await admin_get(http, instance, "/key/info", key=secret)
    return nanos(info["info"]["spend"])


async def team_spend_nanos(http: httpx.AsyncClient, instance: GatewayProcess, team_id: str) -> int:
    info = await admin_get(http, instance, "/team/info", team_id=team_id)
    return nanos(info["team_info"]["spend"])
