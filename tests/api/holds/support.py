"""A gateway whose deployments point at a greedy fake upstream: it writes the largest output cap it receives, or
UNCAPPED_TOKENS when it receives none, as a real model may. Spend bounds are checked against it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from ledgergate.config import load_config
from tests.api.helpers import eventually, key_info, spend_logs
from tests.support.gateway import BudgetModeName, GatewayServer

UNCAPPED_TOKENS = 50_000
DEPLOYMENT_CAP_TOKENS = 64  # model_info.max_output_tokens of every deployment here
OUTPUT_NANOS_PER_TOKEN = 2_000  # input is free: a request's maximum cost is its output cap x this
MAX_COST_NANOS = DEPLOYMENT_CAP_TOKENS * OUTPUT_NANOS_PER_TOKEN  # 128_000: one completion of the deployment's cap
SLOW_LATENCY_MS = 300
MISBEHAVING_TOKENS = 500  # written whatever cap is sent

GREEDY_CHAT = "greedy-gpt"
GREEDY_SLOW = "greedy-gpt-slow"
GREEDY_REASONING = "greedy-o3"  # upstream model o3-mini: capped with max_completion_tokens
GREEDY_REASONING_ALIAS = "greedy-azure-alias"  # an alias upstream; model_info.base_model says it is o3-mini
GREEDY_CLAUDE = "greedy-claude"
MISBEHAVING = "misbehaving-gpt"  # ignores the cap it is sent
EMBEDDING = "greedy-embedding"


def _deployment(name: str, upstream_model: str, base_url: str, headers: dict[str, str], **info: str) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {"model": upstream_model, "api_base": base_url, "api_key": "x", "extra_headers": headers},
        "model_info": {
            "input_cost_per_token": 0,
            "output_cost_per_token": OUTPUT_NANOS_PER_TOKEN / 1e9,
            "max_output_tokens": DEPLOYMENT_CAP_TOKENS,
            **info,
        },
    }


def greedy_gateway(workdir: Path, upstream_base_url: str, budget_mode: BudgetModeName) -> GatewayServer:
    server = GatewayServer(workdir, upstream_base_url, budget_mode=budget_mode)
    greedy = {"x-mock-uncapped-tokens": str(UNCAPPED_TOKENS)}
    document = yaml.safe_load(server.config_path.read_text(encoding="utf-8"))
    document["model_list"] = [
        _deployment(GREEDY_CHAT, "openai/mock-gpt", upstream_base_url, greedy),
        _deployment(GREEDY_SLOW, "openai/mock-gpt", upstream_base_url, {**greedy, "x-mock-latency-ms": "300"}),
        _deployment(GREEDY_REASONING, "openai/o3-mini", upstream_base_url, greedy),
        _deployment(
            GREEDY_REASONING_ALIAS, "openai/my-reasoner", upstream_base_url, greedy, base_model="openai/o3-mini"
        ),
        _deployment(GREEDY_CLAUDE, "anthropic/mock-claude", upstream_base_url, greedy),
        _deployment(
            MISBEHAVING, "openai/mock-gpt", upstream_base_url, {"x-mock-completion-tokens": str(MISBEHAVING_TOKENS)}
        ),
        _deployment(EMBEDDING, "openai/mock-embedding", upstream_base_url, greedy),
    ]
    server.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    server.config = load_config(server.config_path, environ={})
    return server


def budget_usd(nanos: int) -> float:
    return nanos / 1e9


async def charged(admin: httpx.AsyncClient, key: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """The key's spend in nanos, from its view (the admission counter), once it agrees with its spend records
    (counters are settled in the background after the response); and those records."""

    async def probe() -> tuple[int, list[dict[str, Any]]]:
        rows = await spend_logs(admin, key["key"])
        info = await key_info(admin, key["token"])
        return round(info["spend"] * 1e9), rows

    spend_nanos, rows = await eventually(probe, lambda seen: seen[0] == sum(row["cost_nanos"] for row in seen[1]))
    assert spend_nanos == sum(row["cost_nanos"] for row in rows), (spend_nanos, rows)
    return spend_nanos, rows
