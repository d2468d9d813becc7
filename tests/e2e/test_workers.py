"""``ledgergate serve --workers N``: several processes behind one port share the Redis counters and the PostgreSQL
ledger, so a budget holds for the instance as a whole, not per worker (the per-pod counter failure)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

from redis.asyncio import Redis

from ledgergate.container import redis_key_prefix
from tests.e2e.cluster import (
    REQUEST_COST_NANOS,
    GatewayProcess,
    TestDatabase,
    cluster_config,
    unique_prefix_name,
    usd_for_requests,
)
from tests.e2e.traffic import chat, http_client, key_spend_nanos, new_key
from tests.storage.contract.services import delete_prefixed
from tests.support.fake_upstream import FakeUpstream
from tests.support.timing import scaled


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


async def test_two_workers_behind_one_port_enforce_a_key_budget_jointly(
    tmp_path: Path, fake_upstream: FakeUpstream, e2e_database: TestDatabase, redis_admin: Redis
) -> None:
    """200 concurrent requests to one ``serve --workers 2`` against a key paying for 20: exactly 20 served (every
    hold equals its cost here), not 20 per worker; the ledger and the key's counter agree with the costs told."""
    budget_requests, total_requests = 20, 200
    prefix_name = unique_prefix_name()
    document = cluster_config(fake_upstream.base_url, e2e_database.name, prefix_name, 30.0)
    gateway = GatewayProcess("workers", tmp_path, document, "--workers", "2")
    try:
        await gateway.start_async()
        assert gateway.pid is not None
        # uvicorn's supervisor and its two workers (plus multiprocessing's resource tracker, which is no worker)
        workers = [child for child in _children(gateway.pid) if "spawn_main" in _cmdline(child)]
        assert len(workers) == 2
        async with http_client() as http:
            readiness = (await http.get(f"{gateway.base_url}/health/readiness")).json()
            assert (readiness["db"], readiness["redis"]) == ("connected", "connected")
            secret, token = await new_key(http, gateway, max_budget=usd_for_requests(budget_requests))
            outcomes = await asyncio.gather(*(chat(http, gateway, secret) for _ in range(total_requests)))
            statuses = Counter(outcome.status for outcome in outcomes)
            served = [outcome for outcome in outcomes if outcome.status == 200]
            assert set(statuses) <= {200, 429}, statuses
            assert len(served) == budget_requests, statuses
            served_cost = sum(outcome.cost_nanos or 0 for outcome in served)
            assert served_cost == budget_requests * REQUEST_COST_NANOS
            assert await e2e_database.key_ledger(token) == (budget_requests, served_cost)
            assert await key_spend_nanos(http, gateway, secret) == served_cost
    finally:
        await asyncio.to_thread(gateway.stop)
        await delete_prefixed(redis_admin, redis_key_prefix(prefix_name))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def test_workers_on_sqlite_refuse_to_start_naming_what_they_need(tmp_path: Path) -> None:
    """In-process counters cannot be shared between processes: ``--workers 2`` on the SQLite setup is refused
    at start with the reason, instead of letting each worker enforce the budget alone."""
    config = tmp_path / "sqlite.yaml"
    config.write_text(f"general_settings:\n  database_url: sqlite+aiosqlite:///{tmp_path / 'ledger.db'}\n")
    result = subprocess.run(
        [sys.executable, "-m", "ledgergate.cli.main", "serve", "--config", str(config), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=scaled(60.0),
        check=False,
    )
    assert result.returncode == 2
    assert "--workers 2 needs redis_url and a PostgreSQL database_url" in " ".join(result.stderr.split())
