"""Real gateways whose clock the test can move forward, for rate limits' one-minute periods.

``build_container`` takes a clock; the harness (tests/support/gateway.py) builds every gateway without one, so the
fixtures here swap its ``build_container`` for one bound to a ``ShiftedClock`` while they run.
"""

from __future__ import annotations

import functools
import math
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import tests.support.gateway as gateway_module
from ledgergate.config import load_config
from ledgergate.container import build_container
from tests.api.helpers import bearer_client, chat_body, marker
from tests.support.gateway import FLAT_MODEL, GatewayServer

TOKENS_PER_REQUEST = 5  # FLAT_MODEL: the fake upstream generates exactly max_tokens (<= 16)


class ShiftedClock:
    """Real time plus an offset the test only ever increases; thread-safe enough for float reads."""

    def __init__(self) -> None:
        self._offset_s = 0.0
        self.start_of_minute()

    def now_s(self) -> float:
        return time.time() + self._offset_s

    def start_of_minute(self) -> float:
        """Jump to one second into the next minute, so a test has ~58 s of one minute to itself."""
        now_s = self.now_s()
        target_s = (math.floor(now_s / 60) + 1) * 60 + 1
        self._offset_s += target_s - now_s
        return target_s


@contextmanager
def clocked_gateways(clock: ShiftedClock) -> Iterator[None]:
    """Every ``GatewayServer`` started inside builds its container with ``clock``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gateway_module, "build_container", functools.partial(build_container, clock=clock))
        yield


def configure(server: GatewayServer, **general_settings: Any) -> GatewayServer:
    """Change ``general_settings`` of a gateway that has not started yet (e.g. PostgreSQL and Redis)."""
    document = yaml.safe_load(server.config_path.read_text(encoding="utf-8"))
    document["general_settings"].update(general_settings)
    server.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    server.config = load_config(server.config_path, environ={})
    return server


def new_gateway(workdir: Path, upstream_base_url: str, **general_settings: Any) -> GatewayServer:
    workdir.mkdir(parents=True, exist_ok=True)
    return configure(GatewayServer(workdir, upstream_base_url), **general_settings)


async def create(admin: httpx.AsyncClient, path: str, **fields: Any) -> dict[str, Any]:
    response = await admin.post(path, json=fields)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def new_key(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    fields.setdefault("key_alias", f"rl-{uuid.uuid4().hex[:10]}")
    return await create(admin, "/key/generate", **fields)


async def chat(client: httpx.AsyncClient, word: str = "", **extra: Any) -> httpx.Response:
    body = chat_body(f"hello {word or marker()}", FLAT_MODEL, max_tokens=TOKENS_PER_REQUEST, **extra)
    return await client.post("/v1/chat/completions", json=body)


async def chats(gateway: GatewayServer, secret: str, count: int) -> list[int]:
    """``count`` requests one after another; their status codes."""
    async with bearer_client(gateway, secret) as client:
        return [(await chat(client)).status_code for _ in range(count)]


def rate_limit_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "rate_limit_exceeded", error
    return error
