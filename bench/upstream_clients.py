#!/usr/bin/env python3
"""What the gateway's upstream HTTP client costs: CPU per request of httpx vs alternatives, same fake upstream.

    bench/upstream_clients.py [--duration 5] [--concurrency 1,16,64]

Starts the mock upstream in its own process (as run.py does) and, in this process on uvloop, drives a
closed loop of non-streaming chat completion POSTs through each client that is importable: httpx, httpx2 (its
fork, if installed), aiohttp, and ledgergate's own UpstreamClient (its lean HTTP/1.1 client, what the gateway
uses for direct connections). Reports req/s and this process's CPU microseconds per request, which is what the
client would add to the gateway's own CPU per request.

    bench/upstream_clients.py --clients ledgergate,aiohttp   # only these
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV_DIR = BENCH_DIR.parent / ".venv"
if (VENV_DIR / "bin" / "python").exists() and Path(sys.prefix).resolve() != VENV_DIR.resolve():
    os.execv(str(VENV_DIR / "bin" / "python"), [str(VENV_DIR / "bin" / "python"), __file__, *sys.argv[1:]])

import argparse  # noqa: E402 - after the venv re-exec on purpose
import asyncio  # noqa: E402
import importlib.util  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from contextlib import AsyncExitStack  # noqa: E402
from typing import Any  # noqa: E402

import procs  # noqa: E402
import uvloop  # noqa: E402

BODY = b'{"model":"bench-model","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}'
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-upstream-unused"}
POOL_SIZE = 1000  # as ledgergate's UpstreamClient (MAX_CONNECTIONS)

Post = Callable[[], Awaitable[bytes]]


async def _httpx_like(stack: AsyncExitStack, module_name: str, url: str) -> Post:
    module: Any = __import__(module_name)
    limits = module.Limits(max_connections=POOL_SIZE, max_keepalive_connections=500, keepalive_expiry=30.0)
    client = await stack.enter_async_context(module.AsyncClient(limits=limits))

    async def post() -> bytes:
        response = await client.post(url, content=BODY, headers=HEADERS)
        return bytes(response.content)

    return post


async def _aiohttp(stack: AsyncExitStack, url: str) -> Post:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=POOL_SIZE, keepalive_timeout=30.0)
    session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))

    async def post() -> bytes:
        async with session.post(url, data=BODY, headers=HEADERS) as response:
            return await response.read()

    return post


async def _ledgergate(stack: AsyncExitStack, url: str) -> Post:
    from ledgergate.deployments import Deployment
    from ledgergate.domain.pricing import TokenPrices
    from ledgergate.upstream.client import UpstreamClient

    api_base, path = url.rsplit("/chat/completions", 1)[0], "/chat/completions"
    deployment = Deployment(
        model_name="bench-model",
        provider="openai",
        upstream_model="bench-model",
        api_base=api_base,
        api_key="sk-upstream-unused",
        prices=TokenPrices(input_nanos_per_mtok=1, output_nanos_per_mtok=1),
        max_output_tokens=16,
        timeout_s=30.0,
    )
    client = await stack.enter_async_context(UpstreamClient(connect_timeout_s=10.0))

    async def post() -> bytes:
        return (await client.send(deployment, path, BODY)).body

    return post


CLIENTS: dict[str, Callable[[AsyncExitStack, str], Awaitable[Post]]] = {
    "httpx": lambda stack, url: _httpx_like(stack, "httpx", url),
    "httpx2": lambda stack, url: _httpx_like(stack, "httpx2", url),
    "aiohttp": _aiohttp,
    "ledgergate": _ledgergate,
}


async def _drive(post: Post, concurrency: int, duration_s: float) -> dict[str, float]:
    count = 0

    async def worker(deadline: float) -> None:
        nonlocal count
        while time.monotonic() < deadline:
            await post()
            count += 1

    await asyncio.gather(*(worker(time.monotonic() + 0.5) for _ in range(concurrency)))  # warm-up
    count = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(worker(wall0 + duration_s) for _ in range(concurrency)))
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    return {"rps": count / wall_s, "cpu_us_per_request": 1e6 * cpu_s / count, "cpu_pct": 100 * cpu_s / wall_s}


async def _measure(
    url: str, names: list[str], concurrencies: list[int], duration_s: float
) -> list[tuple[str, int, dict[str, float]]]:
    clients = [name for name in names if name == "ledgergate" or importlib.util.find_spec(name) is not None]
    rows = []
    for name in clients:
        for concurrency in concurrencies:
            async with AsyncExitStack() as stack:
                post = await CLIENTS[name](stack, url)
                rows.append((name, concurrency, await _drive(post, concurrency, duration_s)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--clients", default=",".join(CLIENTS), help=f"comma-separated, of {', '.join(CLIENTS)}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ledgergate-clients-") as tmp:
        port = procs.free_port()
        upstream = procs.start(
            "upstream", [sys.executable, str(BENCH_DIR / "mock_upstream.py"), "--port", str(port)], Path(tmp)
        )
        try:
            procs.wait_http(upstream, f"http://127.0.0.1:{port}/v1/models")
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            concurrencies = [int(c) for c in args.concurrency.split(",")]
            names = [name for name in args.clients.split(",") if name in CLIENTS]
            rows = uvloop.run(_measure(url, names, concurrencies, args.duration))
        finally:
            upstream.stop()
    print("| client | conc. | req/s | client CPU us / request | client CPU % |")
    print("|---|---:|---:|---:|---:|")
    for name, concurrency, result in rows:
        print(
            f"| {name} | {concurrency} | {result['rps']:,.0f} | {result['cpu_us_per_request']:,.0f} "
            f"| {result['cpu_pct']:.0f} |"
        )


if __name__ == "__main__":
    main()
