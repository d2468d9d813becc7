#!/usr/bin/env python3
"""CPU per request of the gateway's ASGI app itself, driven in-process: a steadier A/B figure than the HTTP
benchmark when the machine is busy (it measures this process's CPU time, not wall-clock throughput).

    bench/inprocess.py [--requests 20000] [--concurrency 64] [--stream]

The app is built as ``ledgergate serve`` builds it (SQLite ledger, in-process counters, the bench's governance:
key with two windows in a team with a window, carrying a tag with a window) and called directly with ASGI
messages, so uvicorn's HTTP parsing is left out; the upstream is the bench's fake upstream in its own process,
reached over loopback HTTP as in production. Reported: CPU microseconds per request of this process (all
threads: event loop, ledger writer), and where they went with --profile (cProfile, top functions).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV_PYTHON = BENCH_DIR.parent / ".venv" / "bin" / "python"
if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
sys.path.insert(0, str(BENCH_DIR))

import argparse  # noqa: E402 - after the venv re-exec on purpose
import asyncio  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import uvloop  # noqa: E402
from stack import BODY, CONFIG_TEMPLATE, KEY_BUDGET, MASTER_KEY, MODEL, STREAM_BODY, TAG, TEAM, start_upstream  # noqa: E402

from ledgergate.app import create_app  # noqa: E402
from ledgergate.config import load_config  # noqa: E402
from ledgergate.container import build_container  # noqa: E402


async def _governed_key(app: Any) -> str:
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
        team = (await client.post("/team/new", json=TEAM)).raise_for_status().json()
        (await client.post("/tag/new", json=TAG)).raise_for_status()
        key = (await client.post("/key/generate", json={**KEY_BUDGET, "team_id": team["team_id"]})).raise_for_status()
        return str(key.json()["key"])


async def _call(app: Any, token: str, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    sent_body = False
    finished = asyncio.Event()
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body", False):
            finished.set()

    await app(scope, receive, send)
    return status


async def _run(args: argparse.Namespace, tmp: Path, upstream_port: int) -> None:
    config_path = tmp / "config.yaml"
    config_path.write_text(
        CONFIG_TEMPLATE.format(
            master_key=MASTER_KEY,
            database_url=f"sqlite+aiosqlite:///{tmp / 'ledger.db'}",
            services="",
            model=MODEL,
            upstream_port=upstream_port,
        )
    )
    config = load_config(config_path)
    app = create_app(lambda: build_container(config))
    async with app.router.lifespan_context(app):
        token = await _governed_key(app)
        body = (STREAM_BODY if args.stream else BODY).encode()
        remaining = args.requests
        statuses: dict[int, int] = {}

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                status = await _call(app, token, body)
                statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))  # warm-up: same count
        remaining, statuses = args.requests, {}
        profiler = cProfile.Profile() if args.profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        if profiler is not None:
            profiler.disable()
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    print(
        f"{args.requests} requests, concurrency {args.concurrency}, {'streaming' if args.stream else 'non-streaming'}: "
        f"{1e6 * cpu_s / args.requests:.0f} CPU us/request, {args.requests / wall_s:,.0f} req/s, statuses {statuses}"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile_top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured run (slows it down)")
    parser.add_argument("--profile-top", type=int, default=35)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ledgergate-inprocess-") as tmp_name:
        tmp = Path(tmp_name)
        upstream, upstream_url = start_upstream(tmp)
        try:
            port = int(upstream_url.rsplit(":", 1)[1].split("/")[0])
            uvloop.run(_run(args, tmp, port))
        finally:
            upstream.stop()


if __name__ == "__main__":
    main()
