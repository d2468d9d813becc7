"""The processes under test: the mock upstream and ``ledgergate serve`` on SQLite, plus a key with two windows.

Also the post-run read of the ledger, to check every reply the generators saw has its spend record.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procs

BENCH_DIR = Path(__file__).resolve().parent

MASTER_KEY = "sk-bench-master"
MODEL = "bench-model"
BODY = json.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "Say hello to the benchmark."}], "max_tokens": 16},
    separators=(",", ":"),
)
KEY_BUDGET = {  # two concurrent windows, so every request holds and settles on two counter lines
    "key_alias": "bench",
    "max_budget": 1000,
    "budget_duration": "1h",
    "budget_limits": [{"budget_duration": "1d", "max_budget": 10000}],
}
CONFIG_TEMPLATE = """\
general_settings:
  master_key: {master_key}
  database_url: sqlite:///{db_path}
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/mock-gpt
      api_base: http://127.0.0.1:{upstream_port}/v1
      api_key: sk-upstream-unused
    model_info:
      input_cost_per_token: 0.00000015
      output_cost_per_token: 0.0000006
      max_output_tokens: 1024
"""


@dataclass
class Stack:
    upstream: procs.Child
    gateway: procs.Child
    upstream_url: str
    gateway_url: str
    token: str
    tmp: Path


def http_json(url: str, token: str, payload: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read()), response.headers


def sanity_check(stack: Stack) -> None:
    """One request each way: both answer a completion, and the gateway charged it."""
    direct, _ = http_json(stack.upstream_url, stack.token, json.loads(BODY))
    through, headers = http_json(stack.gateway_url, stack.token, json.loads(BODY))
    if not direct.get("choices") or not through.get("choices"):
        raise RuntimeError(f"unexpected completion replies: {direct!r} / {through!r}")
    if not headers.get("x-ledgergate-cost-nanos"):
        raise RuntimeError("the gateway reply has no x-ledgergate-cost-nanos header: was it charged?")


def gateway_command(override: str | None) -> list[str]:
    """The command that serves the gateway (``serve --config ... --port ...`` is appended)."""
    if override:
        return shlex.split(override)
    console_script = Path(sys.executable).parent / "ledgergate"
    return [str(console_script)] if console_script.exists() else [sys.executable, "-m", "ledgergate.cli.main"]


def start(tmp: Path, command: list[str]) -> Stack:
    upstream_port, gateway_port = procs.free_port(), procs.free_port()
    upstream = procs.start(
        "upstream", [sys.executable, str(BENCH_DIR / "mock_upstream.py"), "--port", str(upstream_port)], tmp
    )
    gateway = None
    try:
        procs.wait_http(upstream, f"http://127.0.0.1:{upstream_port}/v1/models")
        config = tmp / "ledgergate.yaml"
        config.write_text(
            CONFIG_TEMPLATE.format(
                master_key=MASTER_KEY, db_path=tmp / "bench.db", model=MODEL, upstream_port=upstream_port
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERGATE_")}  # the config file rules
        gateway = procs.start(
            "gateway", [*command, "serve", "--config", str(config), "--port", str(gateway_port)], tmp, env=env
        )
        gateway_base = f"http://127.0.0.1:{gateway_port}"
        procs.wait_http(gateway, f"{gateway_base}/health/liveliness")
        created, _ = http_json(f"{gateway_base}/key/generate", MASTER_KEY, KEY_BUDGET)
        stack = Stack(
            upstream=upstream,
            gateway=gateway,
            upstream_url=f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
            gateway_url=f"{gateway_base}/v1/chat/completions",
            token=created["key"],
            tmp=tmp,
        )
        sanity_check(stack)
        return stack
    except BaseException:
        if gateway is not None:
            gateway.stop()
        upstream.stop()
        raise


def ledger_summary(db_path: Path) -> dict[str, Any]:
    """Spend records by status, read after the gateway stopped (its writer flushed and closed)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT status, count(*), sum(cost_nanos) FROM spend_records GROUP BY status")
        by_status = {status: {"records": count, "cost_nanos": cost} for status, count, cost in rows}
    finally:
        connection.close()
    return by_status
