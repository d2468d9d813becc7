"""The composition root: the one place that wires adapters to the services.

Embedded (default): SQLite + in-process counters. Several instances: PostgreSQL + Redis (counters and entity
cache coherence), see docs/deployment.md.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate import __version__
from ledgergate.config import DEMO_API_BASE, GatewayConfig, ledger_spill_directory
from ledgergate.deployments import Deployment
from ledgergate.domain.admission import BudgetMode
from ledgergate.domain.dashboard_sessions import SessionPolicy
from ledgergate.domain.ports import Clock, Counters, StoreProbe
from ledgergate.domain.windows import PeriodClock, parse_windows
from ledgergate.services.admin_commands import AdminCommands
from ledgergate.services.admin_guard import AdminGuard
from ledgergate.services.alerts import BudgetAlerter
from ledgergate.services.authentication import Authenticator
from ledgergate.services.charge_flow import ChargeFlow
from ledgergate.services.dashboard_sessions import DashboardSessions
from ledgergate.services.directory import Directory
from ledgergate.services.entity_admin import EntityAdmin
from ledgergate.services.keys import KeyService
from ledgergate.services.metrics import GatewayMetrics
from ledgergate.services.readiness import Readiness
from ledgergate.services.request_charging import RequestCharger
from ledgergate.services.router import ModelRouter
from ledgergate.services.spend_reader import SpendReader
from ledgergate.services.spend_reset import SpendResets
from ledgergate.services.views import EntityViews
from ledgergate.services.window_reads import WindowReads
from ledgergate.storage.fallback_counters import FallbackCounters
from ledgergate.storage.memory_counters import MemoryCounters
from ledgergate.storage.redis_counters import RedisCounters
from ledgergate.storage.redis_invalidation import RedisCacheCoherence
from ledgergate.storage.sql.alerts import SqlAlertStore
from ledgergate.storage.sql.counter_mode import SqlCounterMode
from ledgergate.storage.sql.dashboard_sessions import SqlDashboardSessions
from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.entities import SqlEntityStore
from ledgergate.storage.sql.ledger import SqlLedger
from ledgergate.storage.sql.probe import DatabaseProbe
from ledgergate.storage.sql.spend_queries import SpendQueries
from ledgergate.storage.sql.spend_rollups import SpendRollups
from ledgergate.storage.sql.sql_counters import SqlCounters
from ledgergate.upstream.client import UpstreamClient
from ledgergate.upstream.webhook import WebhookSender

# A Redis that does not answer must turn into 503s quickly, not into requests hanging for its whole outage.
REDIS_CONNECT_TIMEOUT_S = 1.0
REDIS_SOCKET_TIMEOUT_S = 2.0
REDIS_MAX_CONNECTIONS = 512
# One retry covers a pooled connection that died with a Redis restart; more would only delay the 503.
REDIS_RETRIES = 1
# Safety net of the entity cache with several instances: an entry is read again after this long, which bounds
# how long a change whose announcement was lost (writer killed right after its commit) can go unseen.
SHARED_CACHE_MAX_AGE_S = 60.0


def redis_key_prefix(name: str) -> str:
    """``lg`` -> ``lg:{lg}:``: the hash tag puts every key of one deployment in one Redis Cluster slot."""
    return f"{name}:{{{name}}}:"


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
    admin_commands: AdminCommands  # admin writes, for the admin API and the dashboard alike
    rollups: SpendRollups
    spend_reader: SpendReader  # the read side (reports, logs, rollups) for the admin API and the dashboard
    alerter: BudgetAlerter
    metrics: GatewayMetrics
    flow: ChargeFlow  # one LLM request: authenticate -> admit -> forward -> settle
    readiness: Readiness
    dashboard_sessions: DashboardSessions
    coherence: RedisCacheCoherence | None = None  # with Redis: keeps the entity caches of all instances coherent

    async def aclose(self) -> None:
        if self.coherence is not None:
            await self.coherence.aclose()  # leaves at once: writers stop waiting for this instance
        await self.alerter.aclose()  # first: its checks read the counters and write the database
        await self.ledger.close()
        if isinstance(self.counters, RedisCounters | FallbackCounters):
            await self.counters.aclose()
        await self.upstream.aclose()
        await self.engine.dispose()


def _resolve_demo(deployments: tuple[Deployment, ...], demo_base_url: str | None) -> tuple[Deployment, ...]:
    if demo_base_url is None:
        return deployments
    return tuple(
        dataclasses.replace(d, api_base=demo_base_url) if d.api_base == DEMO_API_BASE else d for d in deployments
    )


def _admitting_now(fallback: FallbackCounters) -> Callable[[], str]:
    """Where admission runs now (redis or database), for the readiness report."""
    return lambda: fallback.admitting().value


async def build_container(
    config: GatewayConfig, *, clock: Clock | None = None, demo_base_url: str | None = None
) -> Container:
    settings = config.settings
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    await upgrade_schema(engine)
    store = SqlEntityStore(engine)
    ledger = SqlLedger(engine, timezone=settings.timezone, spill_directory=ledger_spill_directory(settings))
    await ledger.start()
    counters: Counters = MemoryCounters(clock)
    coherence = None
    redis = None
    prefix = ""
    redis_probe: StoreProbe | None = None
    counters_admitting: Callable[[], str] | None = None
    if settings.redis_url:
        # A blocking pool: past its size requests wait for a connection instead of failing (redis-py's default
        # pool raises at 100 in flight, which turned load into 503s).
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=REDIS_MAX_CONNECTIONS,
            timeout=REDIS_SOCKET_TIMEOUT_S,
            decode_responses=True,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), REDIS_RETRIES),
        )
        redis = Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections
        prefix = redis_key_prefix(settings.redis_key_prefix)
        counters = redis_probe = RedisCounters(redis, clock, prefix=prefix, owns_client=True)
        if settings.counter_fallback == "database":
            # A pool of its own: an admission transaction holds its connection while the ledger is queried.
            sql_counters = SqlCounters(create_engine(settings.database_url), clock, owns_engine=True)
            mode = SqlCounterMode(engine)
            fallback = FallbackCounters(counters, sql_counters, mode, redis, clock, redis_prefix=prefix)
            await fallback.start()
            counters = fallback
            counters_admitting = _admitting_now(fallback)
    if redis is not None:
        # The coherence calls back into the directory built with it (late-bound: the directory needs it first).
        coherence = RedisCacheCoherence(
            redis,
            prefix,
            on_invalidate=lambda ref: directory.invalidate(ref),
            on_clear=lambda: directory.clear(),
        )
    directory = Directory(store, max_age_s=SHARED_CACHE_MAX_AGE_S if settings.redis_url else None, coherence=coherence)
    if coherence is not None:
        await coherence.start()
    _, global_windows = parse_windows(
        budget_limits=[{"budget_duration": settings.budget_duration, "max_budget": settings.max_budget}]
        if settings.max_budget is not None and settings.budget_duration
        else None,
        prefix="general_settings.",
    )
    if settings.max_budget is not None and not settings.budget_duration:
        primary, _ = parse_windows(settings.max_budget, prefix="general_settings.")
        global_windows = (primary,) if primary else ()
    periods = PeriodClock(ZoneInfo(settings.timezone))
    windows = WindowReads(directory, counters, ledger, clock, periods)
    alerter = BudgetAlerter(
        directory=directory,
        counters=counters,
        loader=ledger.window_sums,
        store=SqlAlertStore(engine),
        clock=clock,
        sender=WebhookSender(
            timeout_s=settings.alerting_webhook_timeout_s,
            max_attempts=settings.alerting_webhook_max_attempts,
            backoff_s=settings.alerting_webhook_backoff_s,
        )
        if settings.alerting_webhook_url
        else None,
        webhook_url=settings.alerting_webhook_url,
        default_thresholds=settings.alert_thresholds,
        global_windows=global_windows,
        resend_interval_s=settings.alerting_resend_interval_s,
    )
    metrics = GatewayMetrics(
        labels=settings.metrics_labels,
        top_n=settings.metrics_top_n,
        counters=counters,
        windows=windows,
        directory=directory,
        global_windows=global_windows,
        ledger_pending=lambda: ledger.pending_count,
    )
    charger = RequestCharger(
        directory=directory,
        counters=counters,
        ledger=ledger,
        clock=clock,
        periods=periods,
        mode=BudgetMode(settings.budget_mode),
        hold_ttl_s=settings.hold_ttl_s,
        allow_client_tags=settings.allow_client_tags,
        global_windows=global_windows,
        max_n=settings.max_n,
        settle_observers=(alerter,),
        spend_observers=(metrics,),
        windows=windows,
    )
    await alerter.start()
    views = EntityViews(directory, charger, ledger.lifetime_spend)
    deployments = _resolve_demo(config.deployments, demo_base_url)
    keys = KeyService(directory, views, clock)
    authenticator = Authenticator(directory, clock, settings.master_key)
    router = ModelRouter(deployments)
    upstream = UpstreamClient()
    flow = ChargeFlow(
        authenticate=authenticator.principal_from_headers,
        router=router,
        charger=charger,
        upstream=upstream,
        metrics=metrics,
        clock=clock,
    )
    entity_admin = EntityAdmin.build(directory, store, views, keys, clock)
    resets = SpendResets(directory, charger, counters, ledger, clock)
    spend_queries, rollups = SpendQueries(engine), SpendRollups(engine)
    return Container(
        config=dataclasses.replace(config, deployments=deployments),
        clock=clock,
        engine=engine,
        store=store,
        directory=directory,
        counters=counters,
        ledger=ledger,
        charger=charger,
        authenticator=authenticator,
        router=router,
        upstream=upstream,
        keys=keys,
        resets=resets,
        views=views,
        spend=spend_queries,
        entity_admin=entity_admin,
        admin_commands=AdminCommands(entity_admin, keys, resets, AdminGuard(directory, entity_admin.teams)),
        rollups=rollups,
        spend_reader=SpendReader(spend_queries, rollups, ledger.lifetime_spend, clock, ZoneInfo(settings.timezone)),
        alerter=alerter,
        metrics=metrics,
        flow=flow,
        readiness=Readiness(
            version=__version__,
            database=DatabaseProbe(engine),
            ledger_pending=lambda: ledger.pending_count,
            redis=redis_probe,
            counters_admitting=counters_admitting,
        ),
        dashboard_sessions=DashboardSessions(
            SqlDashboardSessions(engine),
            clock,
            SessionPolicy(settings.dashboard_session_idle_timeout_s, settings.dashboard_session_max_age_s),
            settings.master_key,
        ),
        coherence=coherence,
    )
