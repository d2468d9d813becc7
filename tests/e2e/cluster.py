"""Real gateway processes (``ledgergate serve``) sharing one PostgreSQL database and one Redis key prefix.

Each ``GatewayProcess`` is an operating-system process of its own, so it can be SIGKILLed, paused (SIGSTOP) and
restarted on its port like a pod. The tests reach it over HTTP only, and read the ledger with plain SQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import yaml

from tests.storage.contract.services import unavailable
from tests.support.timing import scaled

MASTER_KEY = "sk-e2e-master"
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_DSN_TEMPLATE = "postgresql://postgres@127.0.0.1:5432/{database}"
REDIS_URL = "redis://127.0.0.1:6379/15"
# Base values (see tests/support/timing.py). A process start imports the app and runs the migrations: seconds on
# an idle machine, far more with the cores busy (30 s was not enough at load ~34, nor 90 s at load ~18 with two
# suites and 8 CPU hogs beside). Only a broken start-up ever waits this long.
STARTUP_TIMEOUT_S = scaled(240.0)
STOP_TIMEOUT_S = scaled(30.0)
DATABASE_CONNECT_TIMEOUT_S = scaled(10.0)

# "flat": free input, 2e-6 USD per output token. A request with max_tokens=5 holds and costs exactly 10,000
# nanos (the fake upstream generates max_tokens tokens), so budgets can be written as a number of requests.
FLAT_MODEL = "flat"
SLOW_MODEL = "flat-slow"  # the same price, the upstream answers after SLOW_MODEL_LATENCY_MS: requests in flight
SLOW_MODEL_LATENCY_MS = 25
MAX_TOKENS = 5
REQUEST_COST_NANOS = MAX_TOKENS * 2_000
NANOS_PER_USD = 1_000_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def usd_for_requests(count: int) -> float:
    return count * REQUEST_COST_NANOS / NANOS_PER_USD


def nanos(usd: float) -> int:
    return round(usd * NANOS_PER_USD)


def cluster_config(upstream_base_url: str, database: str, prefix_name: str, hold_ttl_s: float) -> dict[str, Any]:
    def deployment(name: str, **params: Any) -> dict[str, Any]:
        return {
            "model_name": name,
            "litellm_params": {"model": "openai/mock-gpt", "api_base": upstream_base_url, "api_key": "x", **params},
            "model_info": {"input_cost_per_token": 0, "output_cost_per_token": 2e-6, "max_output_tokens": 64},
        }

    return {
        "model_list": [
            deployment(FLAT_MODEL),
            deployment(SLOW_MODEL, extra_headers={"x-mock-latency-ms": str(SLOW_MODEL_LATENCY_MS)}),
        ],
        "general_settings": {
            "master_key": MASTER_KEY,
            "database_url": POSTGRES_DSN_TEMPLATE.format(database=database),
            "redis_url": REDIS_URL,
            "redis_key_prefix": prefix_name,
            "hold_ttl_s": hold_ttl_s,
            "budget_mode": "standard",
        },
    }


class GatewayProcess:
    """``ledgergate serve --config <file> --port <port>`` as a child process; output goes to ``<name>.log``."""

    def __init__(self, name: str, workdir: Path, document: dict[str, Any], *extra_args: str) -> None:
        self.name = name
        self.extra_args = extra_args  # more ``serve`` options, e.g. ``--workers 2``
        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        self.log_path = workdir / f"{name}.log"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> GatewayProcess:
        """Start (or restart, on the same port) and wait until ``/health/readiness`` answers 200."""
        if self._process is not None:
            raise RuntimeError(f"{self.name} is already running")
        # The generated config is what runs: no LEDGERGATE_* variable of the test environment overrides it.
        env = {key: value for key, value in os.environ.items() if not key.startswith("LEDGERGATE_")}
        command = [sys.executable, "-m", "ledgergate.cli.main", "serve", "--config", str(self.config_path)]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*command, "--port", str(self.port), *self.extra_args], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with httpx.Client(timeout=scaled(5.0)) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    self._process = None
                    raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.base_url}/health/readiness").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} not ready within {STARTUP_TIMEOUT_S:g} s:\n{self.log_tail()}")

    async def start_async(self) -> GatewayProcess:
        return await asyncio.to_thread(self.start)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (no flush, no deregistration), as in a crash or an OOM kill."""
        if self._process is not None:
            self.resume()
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        """SIGTERM and wait: uvicorn drains, the container closes."""
        if self._process is None:
            return
        self.resume()
        self._process.terminate()
        try:
            self._process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def pause(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        if self._process is not None and self._paused:
            self._process.send_signal(signal.SIGCONT)
            self._paused = False


@dataclass
class Cluster:
    a: GatewayProcess
    b: GatewayProcess
    prefix_name: str

    @property
    def instances(self) -> tuple[GatewayProcess, GatewayProcess]:
        return (self.a, self.b)

    @property
    def redis_prefix(self) -> str:
        """The prefix of every Redis key of this cluster (see ``ledgergate.container.redis_key_prefix``)."""
        return f"{self.prefix_name}:{{{self.prefix_name}}}:"


def unique_prefix_name() -> str:
    return f"lge2e-{uuid.uuid4().hex[:12]}"


class TestDatabase:
    """A fresh PostgreSQL database, dropped afterwards; ``fetch*`` read it with plain SQL."""

    __test__ = False  # not a test class, despite its name

    def __init__(self) -> None:
        self.name = f"lgtest_{uuid.uuid4().hex[:12]}"
        self.dsn = POSTGRES_DSN_TEMPLATE.format(database=self.name)

    def create(self) -> None:
        async def create() -> None:
            try:
                connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=DATABASE_CONNECT_TIMEOUT_S)
            except Exception as exc:
                unavailable("PostgreSQL at 127.0.0.1:5432 (database postgres, to create a test database)", exc)
            try:
                await connection.execute(f'CREATE DATABASE "{self.name}"')
            finally:
                await connection.close()

        asyncio.run(create())

    def drop(self) -> None:
        async def drop() -> None:
            connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=DATABASE_CONNECT_TIMEOUT_S)
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            finally:
                await connection.close()

        asyncio.run(drop())

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record:
        connection = await asyncpg.connect(self.dsn, timeout=DATABASE_CONNECT_TIMEOUT_S)
        try:
            row = await connection.fetchrow(query, *args)
        finally:
            await connection.close()
        assert row is not None
        return row

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn, timeout=DATABASE_CONNECT_TIMEOUT_S)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    async def key_ledger(self, token: str) -> tuple[int, int]:
        """(records, sum of cost_nanos) of one key in the ledger."""
        row = await self.fetchrow(
            "SELECT count(*), coalesce(sum(cost_nanos), 0) FROM spend_records WHERE key_id = $1", token
        )
        return int(row[0]), int(row[1])

    async def entity_charged(self, entity_type: str, entity_id: str) -> int:
        row = await self.fetchrow(
            "SELECT coalesce(sum(cost_nanos), 0) FROM spend_charges WHERE entity_type = $1 AND entity_id = $2",
            entity_type,
            entity_id,
        )
        return int(row[0])

    async def recorded_request_ids(self, request_ids: list[str]) -> set[str]:
        rows = await self.fetch("SELECT request_id FROM spend_records WHERE request_id = ANY($1::text[])", request_ids)
        return {str(row[0]) for row in rows}
