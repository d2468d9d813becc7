"""The real gateway (config file -> container -> app) served by uvicorn on a loopback port in a thread.

Tests talk to it over genuine HTTP, exactly as a client would. ``restart()`` builds a fresh app and container
on the same SQLite file, which is what a process restart looks like to the ledger.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Literal

import yaml

from ledgergate.app import create_app
from ledgergate.config import GatewayConfig, load_config
from ledgergate.container import build_container
from tests.support.threaded_server import ThreadedServer, bind_loopback
from tests.support.timing import scaled

MASTER_KEY = "sk-master"

BudgetModeName = Literal["standard", "strict"]

# Prices of the configured deployments, in nano-USD per token (1e-6 USD/token = 1000 nanos/token).
CHAT_MODEL = "gpt-4o-mini"
CHAT_INPUT_NANOS_PER_TOKEN = 1_000
CHAT_OUTPUT_NANOS_PER_TOKEN = 2_000
CHAT_MAX_OUTPUT_TOKENS = 64
# Free input makes a request's maximum cost (max_tokens x output price) equal to its actual cost when the
# fake upstream generates exactly max_tokens (it does for max_tokens <= 16): budgets can be sized in requests.
FLAT_MODEL = "flat-output"
FLAT_OUTPUT_NANOS_PER_TOKEN = 2_000
EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_INPUT_NANOS_PER_TOKEN = 100
# The gateway does not forward client headers upstream, so the fake's x-mock-* controls are set per deployment
# (litellm_params.extra_headers). These deployments are priced like FLAT_MODEL.
FAILING_MODEL = "gpt-upstream-500"  # the upstream answers 500
SLOW_MODEL = "gpt-timeout"  # the upstream takes SLOW_MODEL_LATENCY_MS, longer than the deployment's timeout
SLOW_MODEL_TIMEOUT_S = 0.3
SLOW_MODEL_LATENCY_MS = 1500
DRIP_MODEL = "gpt-drip"  # streams DRIP_MODEL_TOKENS tokens, one every DRIP_MODEL_CHUNK_DELAY_MS
DRIP_MODEL_TOKENS = 40
DRIP_MODEL_CHUNK_DELAY_MS = 50
DEAD_MODEL = "gpt-unreachable"  # points at a loopback port nobody listens on


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_config(upstream_base_url: str, database_url: str, budget_mode: BudgetModeName) -> dict[str, Any]:
    """A LiteLLM-style config routing every test model to the fake upstream (or to nowhere, for DEAD_MODEL)."""

    def deployment(name: str, upstream_model: str, input_usd: float, output_usd: float, **params: Any) -> Any:
        return {
            "model_name": name,
            "litellm_params": {"model": upstream_model, "api_base": upstream_base_url, "api_key": "x", **params},
            "model_info": {
                "input_cost_per_token": input_usd,
                "output_cost_per_token": output_usd,
                "max_output_tokens": CHAT_MAX_OUTPUT_TOKENS,
            },
        }

    drip_headers = {
        "x-mock-completion-tokens": str(DRIP_MODEL_TOKENS),
        "x-mock-chunk-delay-ms": str(DRIP_MODEL_CHUNK_DELAY_MS),
    }
    return {
        "model_list": [
            deployment(CHAT_MODEL, "openai/gpt-4o-mini", 1e-6, 2e-6),
            deployment(FLAT_MODEL, "openai/mock-gpt", 0, 2e-6),
            deployment(EMBEDDING_MODEL, "openai/mock-embedding", 1e-7, 0),
            deployment(FAILING_MODEL, "openai/mock-gpt", 0, 2e-6, extra_headers={"x-mock-status": "500"}),
            deployment(
                SLOW_MODEL,
                "openai/mock-gpt",
                0,
                2e-6,
                timeout=SLOW_MODEL_TIMEOUT_S,
                extra_headers={"x-mock-latency-ms": str(SLOW_MODEL_LATENCY_MS)},
            ),
            deployment(DRIP_MODEL, "openai/mock-gpt", 0, 2e-6, extra_headers=drip_headers),
            deployment(DEAD_MODEL, "openai/mock-gpt", 0, 2e-6, api_base=f"http://127.0.0.1:{_free_port()}/v1"),
        ],
        "general_settings": {
            "master_key": MASTER_KEY,
            "database_url": database_url,
            "budget_mode": budget_mode,
        },
    }


class GatewayServer:
    """``ledgergate.app.create_app`` + ``build_container`` from a YAML file in ``workdir``; use ``with``."""

    def __init__(self, workdir: Path, upstream_base_url: str, *, budget_mode: BudgetModeName = "standard") -> None:
        self.workdir = workdir
        self.budget_mode = budget_mode
        self.db_path = workdir / "lg.db"
        self.config_path = workdir / "ledgergate.yaml"
        document = gateway_config(upstream_base_url, f"sqlite+aiosqlite:///{self.db_path}", budget_mode)
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        self.config: GatewayConfig = load_config(self.config_path, environ={})
        self.port = 0
        self._server: ThreadedServer | None = None
        self._app: Any = None

    @property
    def base_url(self) -> str:
        """The gateway root, e.g. ``http://127.0.0.1:PORT`` (the OpenAI API base is ``base_url + "/v1"``)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayServer:
        if self._server is not None:
            raise RuntimeError("gateway already running")
        config = self.config
        self._app = create_app(lambda: build_container(config))
        self._server = ThreadedServer(
            self._app,
            "gateway",
            lifespan="on",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=round(scaled(5.0)),
            backlog=2048,
        )
        # A restart keeps its port when it can, so clients built before the restart keep working.
        self.port = self._server.start(bind_loopback(self.port))
        return self

    def stop(self) -> None:
        """Graceful stop: uvicorn drains requests, then the lifespan closes the container (ledger flushed)."""
        server, self._server = self._server, None
        if server is not None and not server.stop():
            raise RuntimeError("gateway did not stop in time")

    def restart(self) -> GatewayServer:
        """Stop and start a fresh app and container on the same database file."""
        self.stop()
        return self.start()

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
