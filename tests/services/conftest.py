"""A container per test on its own SQLite file (in-process counters), its upstream never opened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from ledgergate.config import load_config
from ledgergate.container import Container, build_container
from tests.support.gateway import MASTER_KEY, gateway_config


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    # The base URL is never dialled: the flow under test forwards through a FunctionUpstream.
    document = gateway_config("http://upstream.invalid/v1", f"sqlite+aiosqlite:///{tmp_path / 'lg.db'}", "standard")
    document["general_settings"]["master_key"] = MASTER_KEY
    path = tmp_path / "ledgergate.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    built = await build_container(load_config(path, environ={}))
    yield built
    await built.aclose()


@pytest.fixture
async def key_secret(container: Container) -> str:
    created = await container.keys.generate({"max_budget": 1.0})
    secret: str = created["key"]
    return secret
