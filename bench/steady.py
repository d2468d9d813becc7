"""Steady-state latency at concurrency 1 through the gateway and straight to the upstream (bench/scale.py)."""

from __future__ import annotations

import http.client
import random
import statistics
import time
import urllib.parse

from stack import BODY

STEADY_REQUESTS = 1000


def filler_secret(index: int) -> str:
    """The secret of filler key ``index`` (scale.py stores the entity under its hash)."""
    return f"sk-scale-filler-{index}"


def latencies_ms(url: str, secrets: list[str], body: bytes) -> list[float]:
    """One keep-alive connection, one request after the other (concurrency 1), a secret per request in turn."""
    target = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
    latencies = []
    try:
        for secret in secrets:
            headers = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
            started = time.perf_counter()
            connection.request("POST", target.path, body, headers)
            response = connection.getresponse()
            response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status}")
    finally:
        connection.close()
    return latencies


def steady_latency(gateway_url: str, direct_url: str, secret: str, filler_keys: int) -> dict[str, float]:
    """p50 latency at concurrency 1 once warm, through the gateway with the governed key and direct to the
    upstream: their difference is the added latency that must not grow with the ledger or the key count. With
    filler keys, also the p50 over 200 of them taken at random (each one's first request loads it from the
    entities table: the lookup that must stay flat with 1,000 vs 1,000,000 keys)."""
    body = BODY.encode()
    latencies_ms(gateway_url, [secret] * 200, body)  # warm-up
    gateway = statistics.median(latencies_ms(gateway_url, [secret] * STEADY_REQUESTS, body))
    direct = statistics.median(latencies_ms(direct_url, ["unused"] * STEADY_REQUESTS, body))
    result = {
        "steady_p50_ms": round(gateway, 3),
        "direct_p50_ms": round(direct, 3),
        "steady_added_p50_ms": round(gateway - direct, 3),
    }
    if filler_keys:
        picked = [filler_secret(index) for index in random.Random(11).sample(range(filler_keys), 200)]
        result["random_keys_first_request_p50_ms"] = round(
            statistics.median(latencies_ms(gateway_url, picked, body)), 3
        )
    return result
