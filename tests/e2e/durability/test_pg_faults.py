"""Issue 12: no served request without a record, with REAL PostgreSQL failing under load.

Reproduced on main before the fix: a ``pg_terminate_backend`` under load gave a 500 and one request that reached the
upstream and was recorded nowhere (``asyncpg.ConnectionDoesNotExistError`` was not a database failure and the
idempotent batch was not retried on a fresh connection).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

import ledgergate.container as container_module
from ledgergate.storage.sql.tables import spend_records
from tests.e2e.durability.harness import (
    LoadOutcome,
    PgGateway,
    PrivatePostgres,
    check_outcome,
    engine_factory,
    run_load,
    unique_run,
    upstream_hits,
    wait_for_no_pending,
)
from tests.storage.contract.services import POSTGRES_URL, create_pg_schema, drop_pg_schema, pg_engine
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import MASTER_KEY
from tests.support.timing import until


async def _terminate_own_backends(application_name: str, stop: asyncio.Event, rounds: list[int]) -> None:
    """Kill the gateway's connections (only those with its application_name) every 30 ms until ``stop``."""
    admin = create_async_engine(POSTGRES_URL)
    try:
        while not stop.is_set():
            async with admin.connect() as connection:
                killed = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": application_name},
                )
                await connection.commit()
            rounds.append(int(killed or 0))
            await asyncio.sleep(0.03)
    finally:
        await admin.dispose()


async def test_terminated_pg_backends_under_load_lose_no_served_request_issue_12(
    tmp_path: Path, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_terminate_backend of every gateway connection, repeatedly, under 16 concurrent clients: each client gets
    its 200 (upstream hit) or a 503 (no upstream hit), never a 500; upstream hits == spend_records rows."""
    schema = await create_pg_schema()
    application_name = f"lg-{schema}"
    monkeypatch.setattr(container_module, "create_engine", engine_factory(application_name, schema))
    gateway = PgGateway(tmp_path, fake_upstream, POSTGRES_URL).start()
    run = unique_run()
    outcome = LoadOutcome()
    stop = asyncio.Event()
    rounds: list[int] = []
    try:
        killer = asyncio.create_task(_terminate_own_backends(application_name, stop, rounds))
        await run_load(gateway.base_url, run, clients=16, per_client=15, outcome=outcome)
        stop.set()
        await killer
        ready = await wait_for_no_pending(gateway.base_url)
        assert ready.get("ledger_pending") == 0, ready
    finally:
        stop.set()
        gateway.stop()
    engine = pg_engine(schema)
    try:
        async with engine.connect() as connection:
            rows = await connection.scalar(select(func.count()).select_from(spend_records))
    finally:
        await engine.dispose()
        await drop_pg_schema(schema)
    hits = upstream_hits(fake_upstream, run)
    assert sum(rounds) > 0, "the test killed no backend: it proved nothing"
    check_outcome(outcome, hits)
    assert rows == len(hits)
    assert sum(1 for status in outcome.statuses.values() if status == 200) > 0


async def test_stopped_private_postgres_under_load_spills_and_replays_every_served_request_issue_12(
    tmp_path: Path, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private PostgreSQL stopped mid-load and started again: served requests are spilled (fsync'd) while it is
    down and replayed when it is back; every client got 200 (hit) or 503 (no hit); upstream hits == ledger rows."""
    postgres = PrivatePostgres()
    try:
        postgres.start()
        monkeypatch.setattr(container_module, "create_engine", engine_factory("lg-durability", None))
        url = postgres.url.replace("postgresql://", "postgresql+asyncpg://")
        gateway = PgGateway(tmp_path, fake_upstream, url).start()
        run = unique_run()
        outcome = LoadOutcome()
        try:
            load = asyncio.create_task(run_load(gateway.base_url, run, clients=12, per_client=25, outcome=outcome))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(postgres.stop, "fast")
            # past the retry budget (about 1.5 s) the gateway spills what it served
            await until(lambda: any(gateway.spill_dir.glob("ledger-spill-*.jsonl")), "records spilled", 30)
            spilled_while_down = sorted(p.name for p in gateway.spill_dir.glob("ledger-spill-*.jsonl"))
            async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10.0) as http:
                readiness = await http.get("/health/readiness")
                # /metrics needs an admin key since metrics_auth defaults to admin (issue 12, input edges).
                metrics_reply = await http.get("/metrics", headers={"authorization": f"Bearer {MASTER_KEY}"})
                assert metrics_reply.status_code == 200, metrics_reply.text
                metrics = metrics_reply.text
            await asyncio.to_thread(postgres.start)
            await load
            ready = await wait_for_no_pending(gateway.base_url)
            assert ready.get("ledger_pending") == 0, ready
        finally:
            gateway.stop()
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                rows = await connection.scalar(select(func.count()).select_from(spend_records))
                distinct = await connection.scalar(select(func.count(func.distinct(spend_records.c.request_id))))
        finally:
            await engine.dispose()
    finally:
        postgres.destroy()
    hits = upstream_hits(fake_upstream, run)
    check_outcome(outcome, hits)
    assert rows == distinct == len(hits)
    assert spilled_while_down, "no record was spilled: the outage was not exercised"
    # While down: not ready, and the records kept locally are visible to the operator.
    assert readiness.status_code == 503
    assert readiness.json()["ledger_pending"] > 0
    gauge = next(line for line in metrics.splitlines() if line.startswith("ledgergate_ledger_pending_records "))
    assert float(gauge.split()[1]) > 0
    assert list(gateway.spill_dir.glob("ledger-spill-*.jsonl")) == []  # replayed and removed
