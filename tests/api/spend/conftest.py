"""Fixtures of the spend reporting tests: one real gateway per module that accepts client tags, and its admin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import yaml

from ledgergate.config import load_config
from tests.api.entities.helpers import client_of
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import MASTER_KEY, GatewayServer


@pytest.fixture(scope="module")
def spend_gateway(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[GatewayServer]:
    """The test gateway with ``allow_client_tags``, so that requests carry tags of every origin."""
    server = GatewayServer(tmp_path_factory.mktemp("spend"), fake_upstream.base_url)
    document = yaml.safe_load(server.config_path.read_text(encoding="utf-8"))
    document["general_settings"]["allow_client_tags"] = True
    server.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    server.config = load_config(server.config_path, environ={})
    with server:
        yield server


@pytest.fixture
async def admin(spend_gateway: GatewayServer) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(spend_gateway, MASTER_KEY) as client:
        yield client
