"""A gateway with alerting configured, and the request/poll helpers of the alert tests."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import yaml

from ledgergate.config import load_config
from tests.support.gateway import FLAT_MODEL, FLAT_OUTPUT_NANOS_PER_TOKEN, MASTER_KEY, GatewayServer
from tests.support.timing import HTTP_TIMEOUT_S, scaled

T = TypeVar("T")
NANOS_PER_USD = 1_000_000_000
# Fast retries keep the retry tests short; the schedule's shape (doubling) is the production one.
FAST_ALERTING = {"webhook_retry_backoff_s": 0.05, "webhook_timeout_s": 5, "resend_interval_s": 600}


class AlertingGateway(GatewayServer):
    """``GatewayServer`` plus ``general_settings.alerting`` (and optionally a database file shared with another
    instance)."""

    def __init__(
        self, workdir: Path, upstream_base_url: str, *, alerting: dict[str, Any], db_path: Path | None = None
    ) -> None:
        super().__init__(workdir, upstream_base_url)
        document = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        if db_path is not None:
            self.db_path = db_path
            document["general_settings"]["database_url"] = f"sqlite+aiosqlite:///{db_path}"
        document["general_settings"]["alerting"] = {**FAST_ALERTING, **alerting}
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        self.config = load_config(self.config_path, environ={})


def client(gateway: GatewayServer, secret: str = MASTER_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=gateway.base_url, headers={"authorization": f"Bearer {secret}"}, timeout=HTTP_TIMEOUT_S
    )


def usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


async def new_key(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    fields.setdefault("key_alias", f"alerts-{uuid.uuid4().hex[:10]}")
    response = await admin.post("/key/generate", json=fields)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def spend(gateway: GatewayServer, secret: str, output_tokens: int) -> None:
    """One chat request costing exactly ``output_tokens x FLAT_OUTPUT_NANOS_PER_TOKEN`` (<= 16 tokens)."""
    assert output_tokens <= 16
    async with client(gateway, secret) as caller:
        response = await caller.post(
            "/v1/chat/completions",
            json={"model": FLAT_MODEL, "max_tokens": output_tokens, "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 200, response.text
    assert int(response.headers["x-ledgergate-cost-nanos"]) == output_tokens * FLAT_OUTPUT_NANOS_PER_TOKEN


async def eventually(probe: Callable[[], T | Awaitable[T]], done: Callable[[T], bool], timeout_s: float = 10.0) -> T:
    """Poll ``probe`` (sync or async) until ``done`` holds for its value (alerts are sent off the response path)."""
    deadline = time.monotonic() + scaled(timeout_s)  # a base value (tests/support/timing.py)
    while True:
        result = probe()
        value = cast(T, await result if inspect.isawaitable(result) else result)
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.02)


async def settle_quietly(seconds: float = 0.3) -> None:
    """Leave time for an alert that should NOT come, so that its absence means something (longer on a slow
    machine, where it would also come later)."""
    await asyncio.sleep(scaled(seconds))


async def alert_log(gateway: GatewayServer, **params: Any) -> list[dict[str, Any]]:
    async with client(gateway) as admin:
        response = await admin.get("/alerts", params=params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows
