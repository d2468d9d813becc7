"""The processes under test: the mock upstream, and a deployment of ``ledgergate serve`` (one process on
SQLite, or one or more processes sharing PostgreSQL + Redis) with governance on.

Governance, created through the admin API before any measured request: a team with a 1 h window, a tag with
a 1 h window, and a key in that team carrying that tag with two windows (1 h and 1 d). So every request
holds and settles four counter lines (key x2, team, tag) and writes a durable spend
record before its reply. Also the post-run ledger read that checks every 2xx reply has its spend record.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import procs
from services import Services

BENCH_DIR = Path(__file__).resolve().parent

MASTER_KEY = "sk-bench-master"
MODEL = "bench-model"
_MESSAGE = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello to the benchmark."}], "max_tokens": 16}
BODY = json.dumps(_MESSAGE, separators=(",", ":"))
STREAM_BODY = json.dumps({**_MESSAGE, "stream": True}, separators=(",", ":"))
TEAM = {"team_alias": "bench-team", "max_budget": 100000, "budget_duration": "1h"}
TAG = {"name": "bench-tag", "max_budget": 100000, "budget_duration": "1h"}
KEY_BUDGET = {  # two concurrent windows on the key itself
    "key_alias": "bench",
    "max_budget": 1000,
    "budget_duration": "1h",
    "budget_limits": [{"budget_duration": "1d", "max_budget": 10000}],
    "tags": [TAG["name"]],
}
GOVERNANCE = {"team": TEAM, "tag": TAG, "key": KEY_BUDGET}
CONFIG_TEMPLATE = """\
general_settings:
  master_key: {master_key}
  database_url: {database_url}
{services}model_list:
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
class Deployment:
    """One gateway target: its processes (one per port) and the governed key's token."""

    name: str
    gateways: list[procs.Child]
    base_urls: list[str]
    token: str = ""
    sqlite_path: Path | None = None
    services: Services | None = None
    setup: dict[str, Any] = field(default_factory=dict)

    @property
    def pids(self) -> list[int]:
        return [gateway.pid for gateway in self.gateways]

    @property
    def urls(self) -> list[str]:
        return [f"{base}/v1/chat/completions" for base in self.base_urls]

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()


def http_json(url: str, token: str, payload: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read()), response.headers


def _http_text(url: str, token: str, body: str) -> str:
    request = urllib.request.Request(url, data=body.encode(), method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.read().decode())


def gateway_command(override: str | None) -> list[str]:
    """The command that serves the gateway (``serve --config ... --port ...`` is appended)."""
    if override:
        return shlex.split(override)
    console_script = Path(sys.executable).parent / "ledgergate"
    return [str(console_script)] if console_script.exists() else [sys.executable, "-m", "ledgergate.cli.main"]


def start_upstream(tmp: Path) -> tuple[procs.Child, str]:
    port = procs.free_port()
    upstream = procs.start("upstream", [sys.executable, str(BENCH_DIR / "mock_upstream.py"), "--port", str(port)], tmp)
    try:
        procs.wait_http(upstream, f"http://127.0.0.1:{port}/v1/models")
        direct, _ = http_json(f"http://127.0.0.1:{port}/v1/chat/completions", "none", json.loads(BODY))
        if not direct.get("choices"):
            raise RuntimeError(f"unexpected upstream reply: {direct!r}")
    except BaseException:
        upstream.stop()
        raise
    return upstream, f"http://127.0.0.1:{port}/v1/chat/completions"


def _create_governance(base_url: str) -> tuple[str, dict[str, Any]]:
    team, _ = http_json(f"{base_url}/team/new", MASTER_KEY, TEAM)
    http_json(f"{base_url}/tag/new", MASTER_KEY, TAG)
    key, _ = http_json(f"{base_url}/key/generate", MASTER_KEY, {**KEY_BUDGET, "team_id": team["team_id"]})
    return str(key["key"]), {"team_id": team["team_id"], **GOVERNANCE}


def _sanity_check(deployment: Deployment) -> None:
    """Each process answers a charged completion, and a stream that ends with [DONE]."""
    for url in deployment.urls:
        through, headers = http_json(url, deployment.token, json.loads(BODY))
        if not through.get("choices") or not headers.get("x-ledgergate-cost-nanos"):
            raise RuntimeError(f"{url}: uncharged or unexpected reply {through!r}")
        if "data: [DONE]" not in _http_text(url, deployment.token, STREAM_BODY):
            raise RuntimeError(f"{url}: the stream did not end with [DONE]")


def start_deployment(
    name: str, tmp: Path, command: list[str], upstream_url: str, processes: int, services: Services | None
) -> Deployment:
    """Start ``processes`` gateways sharing one config (SQLite when ``services`` is None), then governance."""
    upstream_port = int(upstream_url.split(":")[2].split("/")[0])
    sqlite_path = tmp / f"{name}.db" if services is None else None
    if services is None:
        database_url, extra = f"sqlite:///{sqlite_path}", ""
    else:
        database_url = services.database_url
        extra = f"  redis_url: {services.redis_url}\n  redis_key_prefix: {services.redis_key_prefix}\n"
    config = tmp / f"{name}.yaml"
    config.write_text(
        CONFIG_TEMPLATE.format(
            master_key=MASTER_KEY, database_url=database_url, services=extra, model=MODEL, upstream_port=upstream_port
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERGATE_")}  # the config file rules
    deployment = Deployment(name=name, gateways=[], base_urls=[], sqlite_path=sqlite_path, services=services)
    try:
        for index in range(processes):  # one at a time: the first applies the migrations
            port = procs.free_port()
            argv = [*command, "serve", "--config", str(config), "--port", str(port)]
            gateway = procs.start(f"{name}-{index}", argv, tmp, env=env)
            deployment.gateways.append(gateway)
            base = f"http://127.0.0.1:{port}"
            procs.wait_http(gateway, f"{base}/health/liveliness")
            deployment.base_urls.append(base)
        deployment.token, deployment.setup = _create_governance(deployment.base_urls[0])
        _sanity_check(deployment)
    except BaseException:
        deployment.stop()
        raise
    return deployment


def sqlite_ledger_summary(db_path: Path) -> dict[str, Any]:
    """Spend records by status, read after the gateway stopped (its writer flushed and closed)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT status, count(*), sum(cost_nanos) FROM spend_records GROUP BY status")
        by_status = {status: {"records": count, "cost_nanos": cost} for status, count, cost in rows}
    finally:
        connection.close()
    return by_status
