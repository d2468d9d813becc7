"""Builders and readers for the end-to-end tests: keys, request bodies, spend logs, upstream traffic."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import MASTER_KEY, GatewayServer
from tests.support.timing import HTTP_TIMEOUT_S, scaled

T = TypeVar("T")
NANOS_PER_USD = 1_000_000_000


def admin_client(gateway: GatewayServer, **kwargs: Any) -> httpx.AsyncClient:
    return bearer_client(gateway, MASTER_KEY, **kwargs)


def bearer_client(gateway: GatewayServer, secret: str, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=gateway.base_url, headers={"authorization": f"Bearer {secret}"}, timeout=HTTP_TIMEOUT_S, **kwargs
    )


def marker() -> str:
    """A word unique to one test, put in prompts to find that test's requests at the shared fake upstream."""
    return f"marker{uuid.uuid4().hex}"


async def new_key(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """``/key/generate`` with a unique alias; returns the created key object (``key`` is the secret)."""
    fields.setdefault("key_alias", f"test-{uuid.uuid4().hex[:12]}")
    response = await admin.post("/key/generate", json=fields)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def key_info(admin: httpx.AsyncClient, key: str) -> dict[str, Any]:
    response = await admin.get("/key/info", params={"key": key})
    assert response.status_code == 200, response.text
    info: dict[str, Any] = response.json()["info"]
    return info


async def spend_logs(admin: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    response = await admin.get("/spend/logs", params={"api_key": key, "page_size": 1000})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def chat_body(text: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def upstream_requests(fake: FakeUpstream, word: str) -> list[dict[str, Any]]:
    """The requests the fake upstream received whose prompt contains ``word``."""
    found = []
    for received in fake.received():
        body = received.get("json")
        messages = body.get("messages") if isinstance(body, dict) else None
        if isinstance(messages, list) and any(word in str(m.get("content")) for m in messages if isinstance(m, dict)):
            found.append(received)
    return found


def window_held(info: dict[str, Any]) -> list[float]:
    """``held`` of every extra window; the primary window's is not in the key view."""
    return [window["held"] for window in info["budget_limits"]]


def usd(nanos: int) -> float:
    """The JSON view of an amount the gateway is expected to show."""
    return nanos / NANOS_PER_USD


def assert_error_body(response: httpx.Response, status: int, error_type: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with the OpenAI-style error object; returns that object."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert {"message", "type", "param", "code"} <= set(error)
    if error_type is not None:
        assert error["type"] == error_type, error
    return error


async def eventually(probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], timeout_s: float = 5.0) -> T:
    """Poll ``probe`` until ``accept`` holds (background settlement is asynchronous); returns the last value.
    ``timeout_s`` is a base value, scaled (tests/support/timing.py)."""
    deadline = time.monotonic() + scaled(timeout_s)
    while True:
        value = await probe()
        if accept(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)
