"""The composition root: the one place that wires adapters to the services.

Embedded (default): SQLite + in-process counters. Distributed: PostgreSQL (+ Redis counters, see issue 4).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.api.auth import Authenticator
from ledgergate.config import DEMO_API_BASE, GatewayConfig
from ledgergate.deployments import Deployment
from ledgergate.domain.admission import BudgetMode
from ledgergate.domain.ports import Clock, Counters
from ledgergate.domain.windows import PeriodClock, parse_windows
from ledgergate.services.directory import Directory
from ledgergate.services.entity_admin import EntityAdmin
from ledgergate.services.keys import KeyService
from ledgergate.services.request_charging import RequestCharger
from ledgergate.services.router import ModelRouter
from ledgergate.services.spend_reset import SpendResets
from ledgergate.services.views import EntityViews
from ledgergate.storage.memory_counters import MemoryCounters
from ledgergate.storage.redis_counters import RedisCounters
from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.entities import SqlEntityStore
from ledgergate.storage.sql.ledger import SqlLedger
from ledgergate.storage.sql.spend_queries import SpendQueries
from ledgergate.upstream.client import UpstreamClient


class SystemClock:
    def now_s(self) -> float:
        return time.time()


@dataclass
class Container:
    config: GatewayConfig
    clock: Clock
    engine: AsyncEngine
    store: SqlEntityStore
    directory: Directory
    counters: Counters
    ledger: SqlLedger
    charger: RequestCharger
    authenticator: Authenticator
    router: ModelRouter
    upstream: UpstreamClient
    keys: KeyService
    resets: SpendResets
    views: EntityViews
    spend: SpendQueries
    entity_admin: EntityAdmin

    async def aclose(self) -> None:
        await self.ledger.close()
        if isinstance(self.counters, RedisCounters):
            await self.counters.aclose()
        await self.upstream.aclose()
        await self.engine.dispose()


def _resolve_demo(deployments: tuple[Deployment, ...], demo_base_url: str | None) -> tuple[Deployment, ...]:
    if demo_base_url is None:
        return deployments
    return tuple(
        dataclasses.replace(d, api_base=demo_base_url) if d.api_base == DEMO_API_BASE else d for d in deployments
    )


async def build_container(
    config: GatewayConfig, *, clock: Clock | None = None, demo_base_url: str | None = None
) -> Container:
    settings = config.settings
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    await upgrade_schema(engine)
    store = SqlEntityStore(engine)
    directory = Directory(store)
    ledger = SqlLedger(engine)
    await ledger.start()
    counters: Counters = (
        RedisCounters.from_url(settings.redis_url, clock) if settings.redis_url else MemoryCounters(clock)
    )
    _, global_windows = parse_windows(
        budget_limits=[{"budget_duration": settings.budget_duration, "max_budget": settings.max_budget}]
        if settings.max_budget is not None and settings.budget_duration
        else None,
        prefix="general_settings.",
    )
    if settings.max_budget is not None and not settings.budget_duration:
        primary, _ = parse_windows(settings.max_budget, prefix="general_settings.")
        global_windows = (primary,) if primary else ()
    charger = RequestCharger(
        directory=directory,
        counters=counters,
        ledger=ledger,
        clock=clock,
        periods=PeriodClock(ZoneInfo(settings.timezone)),
        mode=BudgetMode(settings.budget_mode),
        hold_ttl_s=settings.hold_ttl_s,
        allow_client_tags=settings.allow_client_tags,
        global_windows=global_windows,
    )
    views = EntityViews(directory, charger, ledger.lifetime_spend)
    deployments = _resolve_demo(config.deployments, demo_base_url)
    keys = KeyService(directory, views, clock)
    return Container(
        config=dataclasses.replace(config, deployments=deployments),
        clock=clock,
        engine=engine,
        store=store,
        directory=directory,
        counters=counters,
        ledger=ledger,
        charger=charger,
        authenticator=Authenticator(directory, clock, settings.master_key),
        router=ModelRouter(deployments),
        upstream=UpstreamClient(),
        keys=keys,
        resets=SpendResets(directory, charger, counters, ledger, clock),
        views=views,
        spend=SpendQueries(engine),
        entity_admin=EntityAdmin.build(directory, store, views, keys, clock),
    )
