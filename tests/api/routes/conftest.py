"""A real gateway whose config adds Anthropic deployments (``anthropic/...``) pointing at the fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ledgergate.config import load_config
from tests.api.helpers import admin_client
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import (
    CHAT_MAX_OUTPUT_TOKENS,
    DRIP_MODEL_CHUNK_DELAY_MS,
    DRIP_MODEL_TOKENS,
    BudgetModeName,
    GatewayServer,
)

# Nano-USD per token of CLAUDE_MODEL (1e-6 USD/token = 1000 nanos/token).
CLAUDE_MODEL = "claude-test"
CLAUDE_INPUT_NANOS_PER_TOKEN = 1_000
CLAUDE_OUTPUT_NANOS_PER_TOKEN = 2_000
CLAUDE_CACHE_READ_NANOS_PER_TOKEN = 100
CLAUDE_CACHE_WRITE_NANOS_PER_TOKEN = 1_250
# The fake reports this many of the prompt's tokens as cache reads for CLAUDE_CACHED_MODEL (same prices).
CLAUDE_CACHED_MODEL = "claude-cached"
CLAUDE_CACHED_TOKENS = 3
# Free input, like tests.support.gateway.FLAT_MODEL: a request's maximum cost is max_tokens x output price.
CLAUDE_FLAT_MODEL = "claude-flat"
CLAUDE_FAILING_MODEL = "claude-upstream-500"
CLAUDE_DRIP_MODEL = "claude-drip"  # streams DRIP_MODEL_TOKENS tokens, one every DRIP_MODEL_CHUNK_DELAY_MS


def anthropic_deployments(upstream_base_url: str) -> list[dict[str, Any]]:
    def deployment(name: str, input_usd: float, headers: dict[str, str] | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"model": "anthropic/mock-claude", "api_base": upstream_base_url, "api_key": "x"}
        if headers:
            params["extra_headers"] = headers
        return {
            "model_name": name,
            "litellm_params": params,
            "model_info": {
                "input_cost_per_token": input_usd,
                "output_cost_per_token": 2e-6,
                "cache_read_input_token_cost": 1e-7,
                "cache_creation_input_token_cost": 1.25e-6,
                "max_output_tokens": CHAT_MAX_OUTPUT_TOKENS,
            },
        }

    drip = {"x-mock-completion-tokens": str(DRIP_MODEL_TOKENS), "x-mock-chunk-delay-ms": str(DRIP_MODEL_CHUNK_DELAY_MS)}
    return [
        deployment(CLAUDE_MODEL, 1e-6),
        deployment(CLAUDE_CACHED_MODEL, 1e-6, {"x-mock-cached-tokens": str(CLAUDE_CACHED_TOKENS)}),
        deployment(CLAUDE_FLAT_MODEL, 0),
        deployment(CLAUDE_FAILING_MODEL, 0, {"x-mock-status": "500"}),
        deployment(CLAUDE_DRIP_MODEL, 0, drip),
    ]


def routes_gateway(workdir: Path, upstream_base_url: str, budget_mode: BudgetModeName) -> GatewayServer:
    """The shared test gateway's config (tests.support.gateway) plus the Anthropic deployments."""
    server = GatewayServer(workdir, upstream_base_url, budget_mode=budget_mode)
    document = yaml.safe_load(server.config_path.read_text(encoding="utf-8"))
    document["model_list"].extend(anthropic_deployments(upstream_base_url))
    server.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    server.config = load_config(server.config_path, environ={})
    return server


@pytest.fixture(scope="module")
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream
) -> Iterator[GatewayServer]:
    """One gateway per module and budget mode (``parametrize("gateway", ["strict"], indirect=True)``)."""
    budget_mode: BudgetModeName = getattr(request, "param", "standard")
    workdir = tmp_path_factory.mktemp(f"routes-{budget_mode}")
    with routes_gateway(workdir, fake_upstream.base_url, budget_mode) as server:
        yield server


@pytest.fixture
async def admin(gateway: GatewayServer) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(gateway) as client:
        yield client
