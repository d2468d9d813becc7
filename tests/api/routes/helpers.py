"""Readers for the route tests: SSE events, what the fake upstream received, the ledger's view of a key."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.api.helpers import key_info, spend_logs, usd, window_held
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayServer
from tests.support.timing import HTTP_TIMEOUT_S


def anthropic_client(gateway: GatewayServer, secret: str) -> httpx.AsyncClient:
    """A client authenticating the Anthropic way (``x-api-key``), as the Anthropic SDK does."""
    return httpx.AsyncClient(base_url=gateway.base_url, headers={"x-api-key": secret}, timeout=HTTP_TIMEOUT_S)


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """The JSON ``data`` of every event of an SSE body, in order (each with its ``event:`` name as ``_event``)."""
    events = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name = None
        data = []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        if data:
            events.append({**orjson.loads(b"\n".join(data)), "_event": name})
    return events


def sent_with(fake: FakeUpstream, word: str) -> list[dict[str, Any]]:
    """The requests the fake upstream received whose JSON body mentions ``word``."""
    return [received for received in fake.received() if word in orjson.dumps(received.get("json")).decode()]


async def assert_charged(admin: httpx.AsyncClient, key: dict[str, Any], expected_nanos: list[int], route: str) -> None:
    """One successful spend record per call with its exact cost, booked on ``route``; the key's spend is their sum
    and nothing is left held."""
    rows = await spend_logs(admin, key["key"])
    assert sorted(row["cost_nanos"] for row in rows) == sorted(expected_nanos)
    assert all(row["status"] == "success" and row["call_type"] == route for row in rows), rows
    assert all(row["spend"] == usd(row["cost_nanos"]) for row in rows)
    info = await key_info(admin, key["token"])
    assert info["spend"] == usd(sum(expected_nanos))
    assert window_held(info) == [0] * len(info["budget_limits"])
