"""/spend/report from the daily rollups, through a real gateway on SQLite and on PostgreSQL: after randomized
traffic charged at chosen instants over several local days (a DST change included), every grouping's rows per
day equal the ledger's own rows summed per local day, also after a restart in another timezone (whose daily
rows are filled in the background while requests keep coming)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ledgergate.app import create_app
from ledgergate.config import load_config
from ledgergate.container import Container, build_container
from tests.api.entities.helpers import get
from tests.builders import ManualClock
from tests.storage.contract.services import CONNECT_TIMEOUT_S, unavailable
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import CHAT_MODEL, FLAT_MODEL, MASTER_KEY, gateway_config

GROUPS = ("key", "user", "team", "team_member", "tag", "model")
PG_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
Totals = tuple[int, int, int, int]


@dataclass
class Gateway:
    container: Container
    client: httpx.AsyncClient
    clock: ManualClock
    tz: ZoneInfo


Starter = Callable[[str], Awaitable[Gateway]]


async def _never() -> Container:
    raise AssertionError("the container is built by the fixture, with the test's clock")


@pytest.fixture(params=["sqlite", "postgresql"])
async def start_gateway(
    request: pytest.FixtureRequest, tmp_path: Path, fake_upstream: FakeUpstream
) -> AsyncIterator[Starter]:
    """Starts gateways (one at a time) in a chosen timezone on one fresh database of the dialect."""
    database = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'lg.db'}"
    else:
        database = f"lgtest_{uuid.uuid4().hex[:12]}"
        admin = create_async_engine(
            PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"timeout": CONNECT_TIMEOUT_S}
        )
        try:
            async with admin.connect() as connection:
                await connection.execute(text(f'CREATE DATABASE "{database}"'))
        except Exception as exc:
            unavailable("PostgreSQL at 127.0.0.1:5432", exc)
        finally:
            await admin.dispose()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    running: list[tuple[Container, httpx.AsyncClient]] = []
    clock = ManualClock(0.0)

    async def start(timezone: str) -> Gateway:
        for container, client in running:
            await client.aclose()
            await container.aclose()
        running.clear()
        document = gateway_config(fake_upstream.base_url, url, "standard")
        document["general_settings"]["timezone"] = timezone
        document["general_settings"]["allow_client_tags"] = True
        config_path = tmp_path / f"ledgergate-{uuid.uuid4().hex[:6]}.yaml"
        config_path.write_text(yaml.safe_dump(document), encoding="utf-8")
        container = await build_container(load_config(config_path, environ={}), clock=clock)
        app = create_app(_never)
        app.state.container = container
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
        running.append((container, client))
        return Gateway(container, client, clock, ZoneInfo(timezone))

    try:
        yield start
    finally:
        for container, client in running:
            await client.aclose()
            await container.aclose()
        if database is not None:
            admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            try:
                async with admin.connect() as connection:
                    await connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            finally:
                await admin.dispose()


async def _keys(gateway: Gateway) -> list[str]:
    """Secrets of a personal key, two team keys (with and without a user) and a tagged key."""

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await gateway.client.post(path, json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    user = await post("/user/new", {"auto_create_key": False})
    team = await post("/team/new", {"tags": ["team-tag"]})
    await post("/team/member_add", {"team_id": team["team_id"], "member": {"user_id": user["user_id"], "role": "user"}})
    bodies = [
        {"user_id": user["user_id"]},
        {"user_id": user["user_id"], "team_id": team["team_id"]},
        {"team_id": team["team_id"], "tags": ["key-tag"]},
        {"tags": ["key-tag"]},
    ]
    return [str((await post("/key/generate", body))["key"]) for body in bodies]


async def _traffic(gateway: Gateway, secrets: list[str], rng: random.Random, first: datetime, count: int) -> None:
    """``count`` requests charged at random instants of the 4 days from ``first``, with random client tags."""
    span_s = 4 * 86_400
    for _ in range(count):
        gateway.clock.now = first.timestamp() + rng.randrange(span_s * 1000) / 1000
        body = {
            "model": rng.choice((CHAT_MODEL, FLAT_MODEL)),
            "messages": [{"role": "user", "content": " ".join(["hi"] * rng.randint(1, 20))}],
            "max_tokens": rng.randint(1, 16),
            "metadata": {"tags": rng.sample(["client-a", "client-b"], rng.randint(0, 2))},
        }
        response = await gateway.client.post(
            "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {rng.choice(secrets)}"}
        )
        assert response.status_code == 200, response.text


async def _ledger_per_day(gateway: Gateway, group_by: str) -> dict[tuple[str, str], Totals]:
    """(local date, entity) -> sums, straight from spend_charges / spend_records and the standard calendar."""
    if group_by == "model":
        query = text("SELECT model, charged_at_us, cost_nanos, prompt_tokens, completion_tokens FROM spend_records")
    else:
        query = text(
            "SELECT c.entity_id, c.charged_at_us, c.cost_nanos, r.prompt_tokens, r.completion_tokens "
            "FROM spend_charges c JOIN spend_records r ON r.request_id = c.request_id WHERE c.entity_type = :type"
        ).bindparams(type=group_by)
    async with gateway.container.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    sums: dict[tuple[str, str], Totals] = {}
    for entity_id, at_us, cost, prompt, completion in rows:
        day = datetime.fromtimestamp(at_us // 1_000_000, gateway.tz).date().isoformat()
        old = sums.get((day, entity_id), (0, 0, 0, 0))
        sums[(day, entity_id)] = (old[0] + cost, old[1] + 1, old[2] + prompt, old[3] + completion)
    return sums


async def _assert_reports_equal_ledger(gateway: Gateway, first_day: date, days: int) -> None:
    for group_by in GROUPS:
        report = await get(
            gateway.client,
            "/spend/report",
            group_by=group_by,
            start_date=first_day.isoformat(),
            end_date=(first_day + timedelta(days=days - 1)).isoformat(),
        )
        got = {
            (row["date"], row["entity_id"]): (
                row["cost_nanos"],
                row["requests"],
                row["prompt_tokens"],
                row["completion_tokens"],
            )
            for row in report["rows"]
        }
        assert got == await _ledger_per_day(gateway, group_by), group_by


async def _coverage(gateway: Gateway) -> dict[str, str]:
    async with gateway.container.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT timezone, state FROM rollup_coverage"))).all()
    return {str(row[0]): str(row[1]) for row in rows}


async def test_spend_report_from_daily_rollups_equals_ledger_per_local_day(start_gateway: Starter) -> None:
    """In New York across the spring DST change, every grouping's report rows equal the ledger summed per local
    day; after a restart in Berlin the earlier days are filled from the hourly rows while requests continue
    (reports exact before and after), and Berlin's report equals the ledger per Berlin day."""
    rng = random.Random(20260308)
    new_york = await start_gateway("America/New_York")
    assert await _coverage(new_york) == {"America/New_York": "complete"}
    secrets = await _keys(new_york)
    await _traffic(new_york, secrets, rng, datetime(2026, 3, 6, 12, tzinfo=new_york.tz), 60)
    await _assert_reports_equal_ledger(new_york, date(2026, 3, 5), 7)

    berlin = await start_gateway("Europe/Berlin")
    await _traffic(berlin, secrets, rng, datetime(2026, 3, 6, tzinfo=berlin.tz), 20)
    await _assert_reports_equal_ledger(berlin, date(2026, 3, 5), 7)  # whether filled yet or not
    await berlin.container.ledger.daily_rollups_filled()
    assert await _coverage(berlin) == {"Europe/Berlin": "complete"}
    await _traffic(berlin, secrets, rng, datetime(2026, 3, 6, tzinfo=berlin.tz), 20)
    await _assert_reports_equal_ledger(berlin, date(2026, 3, 5), 7)
