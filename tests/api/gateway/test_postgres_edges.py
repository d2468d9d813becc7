"""Issue 12 on the multi-instance stack (real PostgreSQL and Redis, ``counter_fallback: database``): ``/key/list``
by a key without a user, and readiness reporting Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ledgergate.config import load_config
from tests.api.helpers import admin_client, bearer_client, new_key
from tests.e2e.cluster import TestDatabase, free_port
from tests.storage.contract.services import REDIS_URL, check_redis, delete_prefixed, redis_client
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayServer


class PostgresGateway(GatewayServer):
    """The test gateway on its own PostgreSQL database, with Redis counters that fall back to the database."""

    def __init__(
        self, workdir: Path, upstream_base_url: str, database_dsn: str, prefix_name: str, redis_url: str = REDIS_URL
    ) -> None:
        super().__init__(workdir, upstream_base_url)
        document = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        document["general_settings"].update(
            database_url=database_dsn,
            redis_url=redis_url,
            redis_key_prefix=prefix_name,
            counter_fallback="database",
        )
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        self.config = load_config(self.config_path, environ={})


@pytest.fixture(scope="module")
def pg_gateway(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[PostgresGateway]:
    asyncio.run(check_redis())
    database = TestDatabase()
    database.create()
    prefix_name = f"lgtest-{uuid.uuid4().hex[:12]}"
    try:
        workdir = tmp_path_factory.mktemp("pg-gateway")
        with PostgresGateway(workdir, fake_upstream.base_url, database.dsn, prefix_name) as server:
            yield server
    finally:
        database.drop()

        async def cleanup() -> None:
            client = redis_client()
            try:
                await delete_prefixed(client, f"{prefix_name}:")
            finally:
                await client.aclose()

        asyncio.run(cleanup())


@pytest.fixture
async def pg_admin(pg_gateway: PostgresGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(pg_gateway) as client:
        yield client


async def _list(gateway: GatewayServer, secret: str, **params: Any) -> httpx.Response:
    async with bearer_client(gateway, secret) as client:
        return await client.get("/key/list", params=params)


async def test_key_list_by_a_non_admin_key_without_a_user_bug_nul_sentinel_500_on_postgresql(
    pg_gateway: PostgresGateway, pg_admin: httpx.AsyncClient
) -> None:
    """Regression (issue 12): on PostgreSQL, ``GET /key/list`` by a non-admin key without a user was a 500 (a NUL
    byte used as a sentinel user id, which PostgreSQL refuses). Now the key sees itself, and only itself."""
    team = await pg_admin.post("/team/new", json={"team_alias": "t"})
    assert team.status_code == 200, team.text
    team_id = team.json()["team_id"]
    lonely = await new_key(pg_admin, team_id=team_id)
    other = await new_key(pg_admin)
    response = await _list(pg_gateway, lonely["key"])
    assert response.status_code == 200, response.text
    assert response.json()["keys"] == [lonely["token"]]
    assert (await _list(pg_gateway, other["key"])).json()["keys"] == [other["token"]]
    assert (await _list(pg_gateway, lonely["key"], team_id=team_id)).json()["keys"] == [lonely["token"]]
    for filters in ({"team_id": "another-team"}, {"key_alias": "not-its-alias"}, {"page": 2}):
        response = await _list(pg_gateway, lonely["key"], **filters)
        assert response.status_code == 200 and response.json()["keys"] == [], (filters, response.text)
    full = (await _list(pg_gateway, lonely["key"], return_full_object="true")).json()["keys"]
    assert [item["token"] for item in full] == [lonely["token"]]


async def test_key_list_by_a_users_key_shows_that_users_keys_on_postgresql(
    pg_gateway: PostgresGateway, pg_admin: httpx.AsyncClient
) -> None:
    """A key of a user lists the user's keys (whatever user_id it asks for), not the others'."""
    created = await pg_admin.post("/user/new", json={"user_role": "internal_user"})
    assert created.status_code == 200, created.text
    user = created.json()
    second = await new_key(pg_admin, user_id=user["user_id"])
    await new_key(pg_admin)  # someone else's
    response = await _list(pg_gateway, user["key"], user_id="somebody-else")
    assert response.status_code == 200, response.text
    assert sorted(response.json()["keys"]) == sorted([user["token"], second["token"]])


async def test_readiness_with_counter_fallback_database_bug_has_a_redis_field(pg_gateway: PostgresGateway) -> None:
    """Regression (issue 12): with ``counter_fallback: database`` readiness had no ``redis`` field although
    docs/deployment.md says to alert on it. It has, and says where admission runs (``counters``)."""
    async with httpx.AsyncClient(base_url=pg_gateway.base_url) as client:
        response = await client.get("/health/readiness")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["db"] == "connected" and body["redis"] == "connected"
    assert body["counters"] == "redis"


def test_readiness_with_counter_fallback_database_reports_an_unreachable_redis(
    tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    """With Redis unreachable under ``counter_fallback: database``, readiness stays 200 (admission runs through
    PostgreSQL) and its ``redis`` field says ``error: ...``, the signal docs/deployment.md tells operators to
    alert on."""
    database = TestDatabase()  # its own: the fallback mode it may switch is shared by a database's instances
    database.create()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    try:
        gateway = PostgresGateway(tmp_path, fake_upstream.base_url, database.dsn, "lgdown", redis_url=dead_redis)
        with gateway:
            response = httpx.get(f"{gateway.base_url}/health/readiness", timeout=30)
    finally:
        database.drop()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["db"] == "connected" and body["redis"].startswith("error: "), body
    assert body["counters"] in ("redis", "database")
