"""Fixtures of the entity tests: one real gateway per module (tests/support/gateway.py) and a master client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.entities.helpers import client_of
from tests.support.fixtures import gateway
from tests.support.gateway import MASTER_KEY, GatewayServer

__all__ = ["admin", "gateway"]


@pytest.fixture
async def admin(gateway: GatewayServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the module's gateway authenticated with the master key."""
    async with client_of(gateway, MASTER_KEY) as client:
        yield client
