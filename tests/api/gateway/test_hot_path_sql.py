"""The request hot path reads nothing from the database once the caches are warm."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.api.helpers import bearer_client, chat_body, new_key
from tests.support.gateway import CHAT_MODEL, GatewayServer


class StatementLog:
    """Every SQL statement the gateway's SQLAlchemy engine executes, from any thread."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self._lock = threading.Lock()

    def record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        with self._lock:
            self.statements.append(statement)


@pytest.fixture
def statement_log(gateway: GatewayServer) -> Iterator[StatementLog]:
    engine = gateway._app.state.container.engine.sync_engine
    log = StatementLog()
    event.listen(engine, "before_cursor_execute", log.record)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", log.record)


async def test_hot_path_does_no_sql_read_on_a_cache_hit(
    gateway: GatewayServer, admin: httpx.AsyncClient, statement_log: StatementLog
) -> None:
    """After the first request (key, windows and counters cached), 20 more requests against a key with two
    windows run no SQL statement through the engine: admission and charging use the caches and counters, and
    the ledger append goes through the group-commit writer."""
    key = await new_key(
        admin, max_budget=100, budget_duration="1h", budget_limits=[{"budget_duration": "1d", "max_budget": 1000}]
    )
    async with bearer_client(gateway, key["key"]) as client:
        warm = await client.post("/v1/chat/completions", json=chat_body("warm up", CHAT_MODEL))
        assert warm.status_code == 200
        assert any(s.lstrip().upper().startswith("SELECT") for s in statement_log.statements)  # the log works
        statement_log.statements.clear()
        for index in range(20):
            response = await client.post("/v1/chat/completions", json=chat_body(f"hot {index}", CHAT_MODEL))
            assert response.status_code == 200
    assert statement_log.statements == []
