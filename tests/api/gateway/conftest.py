"""Fixtures of the end-to-end HTTP tests: a real gateway (see tests/support/gateway.py) and clients of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.helpers import admin_client
from tests.support.fixtures import gateway, gateway_factory
from tests.support.gateway import GatewayServer

__all__ = ["admin", "gateway", "gateway_factory"]


@pytest.fixture
async def admin(gateway: GatewayServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the module's gateway authenticated with the master key."""
    async with admin_client(gateway) as client:
        yield client
