"""Fixtures of the per-model budget tests: one real gateway per module, a master client, and the SQL ledger of
each dialect (the storage contract suite's fixtures)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.entities.helpers import client_of
from tests.storage.contract.conftest import sql_db, sql_ledger
from tests.support.fixtures import gateway, gateway_factory
from tests.support.gateway import MASTER_KEY, GatewayServer

__all__ = ["admin", "gateway", "gateway_factory", "sql_db", "sql_ledger"]


@pytest.fixture
async def admin(gateway: GatewayServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the module's gateway authenticated with the master key."""
    async with client_of(gateway, MASTER_KEY) as client:
        yield client
