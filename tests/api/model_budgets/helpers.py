"""Requests for two models, sized so that budgets can be counted in requests.

``FLAT_MODEL`` (model A) costs exactly ``REQUEST_NANOS`` per request (see tests/api/entities/helpers.py);
``CHAT_MODEL`` (model B) also charges input tokens, so its cost is read back from the response's usage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.api.entities.helpers import chat, get, ok
from tests.support.gateway import (
    CHAT_INPUT_NANOS_PER_TOKEN,
    CHAT_MODEL,
    CHAT_OUTPUT_NANOS_PER_TOKEN,
    FLAT_MODEL,
    GatewayServer,
)

MODEL_A = FLAT_MODEL
MODEL_B = CHAT_MODEL


async def chat_a(gateway: GatewayServer, secret: str) -> httpx.Response:
    """One request for model A, costing exactly ``REQUEST_NANOS``."""
    return await chat(gateway, secret)


async def chat_b(gateway: GatewayServer, secret: str) -> int:
    """One admitted request for model B; returns what it cost, in nanos."""
    usage = ok(await chat(gateway, secret, model=MODEL_B))["usage"]
    cost: int = usage["prompt_tokens"] * CHAT_INPUT_NANOS_PER_TOKEN
    cost += usage["completion_tokens"] * CHAT_OUTPUT_NANOS_PER_TOKEN
    return cost


def next_midnight() -> str:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return midnight.isoformat().replace("+00:00", "Z")


async def key_view(admin: httpx.AsyncClient, secret: str) -> dict[str, Any]:
    info: dict[str, Any] = (await get(admin, "/key/info", key=secret))["info"]
    return info


async def ledger_spend(admin: httpx.AsyncClient, secret: str, model: str) -> int:
    """What the ledger holds for the key's requests for ``model``, in nanos (``/spend/logs``)."""
    rows = await get(admin, "/spend/logs", api_key=secret, model=model, page_size=1000)
    return sum(int(row["cost_nanos"]) for row in rows)
