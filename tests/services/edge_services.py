"""The services as the composition root wires them (SQLite, in-process counters), without any HTTP layer: what
the admin API and the dashboard both call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ledgergate.config import GatewayConfig, GatewaySettings
from ledgergate.container import Container, build_container
from ledgergate.domain.principals import Principal

MASTER_KEY = "sk-master-edges"


@asynccontextmanager
async def embedded_services(workdir: Path, *, timezone: str = "UTC") -> AsyncIterator[Container]:
    settings = GatewaySettings(
        master_key=MASTER_KEY, database_url=f"sqlite+aiosqlite:///{workdir / 'lg.db'}", timezone=timezone
    )
    container = await build_container(GatewayConfig(settings, ()))
    try:
        yield container
    finally:
        await container.aclose()


async def principal_of(container: Container, secret: str) -> Principal:
    return await container.authenticator.principal_from_headers({"authorization": f"Bearer {secret}"})
