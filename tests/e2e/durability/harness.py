"""A real gateway on PostgreSQL under load while the database fails, and the bookkeeping of what each client got.

The gateway runs in a thread (uvicorn) with its own event loop; its engines connect with a test-chosen
``application_name`` (so a test terminates only its own backends) and ``search_path`` (its own schema).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.app import create_app
from ledgergate.config import load_config
from ledgergate.container import build_container
from ledgergate.storage.sql.engine import create_engine
from tests.api.helpers import chat_body, upstream_requests
from tests.storage.contract.services import REQUIRE_ENV
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import FLAT_MODEL, MASTER_KEY, gateway_config
from tests.support.threaded_server import ThreadedServer, bind_loopback


def engine_factory(application_name: str, schema: str | None) -> Callable[[str], AsyncEngine]:
    """``create_engine`` of the container, with the test's connection settings added."""

    def create(url: str) -> AsyncEngine:
        settings = {"application_name": application_name, **({"search_path": schema} if schema else {})}
        return create_engine(url, server_settings=settings)

    return create


class PgGateway:
    """A gateway on ``database_url`` whose spill directory is in ``workdir``; ``start``/``stop``."""

    def __init__(self, workdir: Path, upstream: FakeUpstream, database_url: str) -> None:
        document = gateway_config(upstream.base_url, database_url, "standard")
        document["general_settings"]["ledger_spill_dir"] = str(workdir / "spill")
        path = workdir / "ledgergate.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        self.config = load_config(path, environ={})
        self.spill_dir = workdir / "spill"
        self._server: ThreadedServer | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PgGateway:
        config = self.config
        self._server = ThreadedServer(
            create_app(lambda: build_container(config)), "gateway", lifespan="on", timeout_graceful_shutdown=10
        )
        self.port = self._server.start(bind_loopback(self.port))
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None and not server.stop():
            raise RuntimeError("gateway did not stop in time")


@dataclass
class LoadOutcome:
    """Per request marker: the status the client saw (0: a transport error)."""

    statuses: dict[str, int] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)


async def run_load(base_url: str, run: str, clients: int, per_client: int, outcome: LoadOutcome) -> None:
    """``clients`` concurrent clients, each sending ``per_client`` chat requests one after another."""

    async def client(index: int) -> None:
        async with httpx.AsyncClient(
            base_url=base_url, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=60.0
        ) as http:
            for number in range(per_client):
                word = f"{run}c{index}n{number}x"
                try:
                    response = await http.post(
                        "/v1/chat/completions", json=chat_body(f"hi {word}", FLAT_MODEL, max_tokens=4)
                    )
                except httpx.TransportError as exc:
                    outcome.statuses[word] = 0
                    outcome.bodies[word] = repr(exc)
                    continue
                outcome.statuses[word] = response.status_code
                outcome.bodies[word] = response.text[:300]

    await asyncio.gather(*(client(index) for index in range(clients)))


def upstream_hits(upstream: FakeUpstream, run: str) -> set[str]:
    """The markers of this run's requests that reached the fake upstream."""
    hits: set[str] = set()
    for received in upstream_requests(upstream, run):
        for message in received["json"]["messages"]:
            for word in str(message.get("content")).split():
                if word.startswith(run):
                    hits.add(word)
    return hits


def check_outcome(outcome: LoadOutcome, hits: set[str]) -> None:
    """Every client got its answer (200, upstream hit) or a 503 that never reached the upstream."""
    wrong = {
        word: (status, outcome.bodies[word])
        for word, status in outcome.statuses.items()
        if not ((status == 200 and word in hits) or (status == 503 and word not in hits))
    }
    assert wrong == {}


async def wait_for_no_pending(base_url: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """Poll readiness until the ledger has nothing pending (spilled records replayed); its last body."""
    body: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as http:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            response = await http.get("/health/readiness")
            body = response.json()
            if response.status_code == 200 and body.get("ledger_pending") == 0:
                return body
            await asyncio.sleep(0.2)
    return body


# -- a private PostgreSQL instance ------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} but {REQUIRE_ENV}=1 requires it")
    pytest.skip(f"{reason}; set {REQUIRE_ENV}=1 to fail instead of skipping")


class PrivatePostgres:
    """initdb + pg_ctl in a temp dir on a free port, as user ``postgres`` when run as root (initdb refuses root)."""

    def __init__(self) -> None:
        binaries = _postgres_bin()
        if binaries is None:
            _unavailable("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        assert binaries is not None
        self._bin = binaries
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                _unavailable("running as root without runuser to start PostgreSQL as user postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self.root = Path(tempfile.mkdtemp(prefix="lg-private-pg-"))
        self.data = self.root / "data"
        with socket.socket() as probe:  # a free port now; PostgreSQL binds it right after
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        if self._as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as_user, str(self._bin / tool), *args], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "pg.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def unique_run() -> str:
    return f"run{uuid.uuid4().hex[:10]}"
