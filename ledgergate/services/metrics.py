"""Prometheus metrics of the gateway (``GET /metrics``): what was served, spent and refused, and what is left.

Everything lives in a registry of its own (never prometheus-client's global one), so several gateways in one
process do not collide. Requests, tokens and spend are plain integers bumped on the hot path and turned into
metric families only at scrape time: no lock, no float rounding (spend is summed in nanos), and one dict
lookup per request. Label cardinality is bounded by configuration: only the configured entities become labels,
and each entity label takes at most ``MAX_VALUES_PER_LABEL`` distinct values.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterable
from enum import StrEnum

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.ledger import RequestStatus, SpendRecord
from ledgergate.domain.output_caps import exceeds_hold
from ledgergate.domain.ports import Counters, CounterStoreUnavailable
from ledgergate.domain.windows import Window
from ledgergate.services.directory import Directory
from ledgergate.services.request_charging import Ticket
from ledgergate.services.window_reads import WindowReads

log = logging.getLogger("ledgergate.metrics")

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the classic text format every Prometheus version scrapes
NANOS_PER_USD = 1_000_000_000
# The entities that may become labels, in the order their labels appear.
ENTITY_LABELS = ("model", "key", "team", "customer", "tag")
DEFAULT_ENTITY_LABELS = ("model", "team")
# A hard stop behind the configuration: a label turned on for an unbounded entity (customers are whatever the
# clients send) cannot grow the series without bound; later values share the series of OVERFLOW_VALUE.
MAX_VALUES_PER_LABEL = 1000
OVERFLOW_VALUE = "__other__"
KEY_HASH_PREFIX_CHARS = 12  # a key without alias is named by its hash's start: never by its secret
# Entities remembered per budget series shown: the top N are chosen among this many recently charged ones.
RECENT_ENTITIES_PER_SERIES = 10
# Time to the upstream's response headers: a few ms for a cache hit, minutes for a slow reasoning model.
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, math.inf)


class RefusalReason(StrEnum):
    BUDGET_EXCEEDED = "budget_exceeded"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    BLOCKED = "blocked"
    UNAUTHORIZED = "unauthorized"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    COUNTER_STORE_UNAVAILABLE = "counter_store_unavailable"


class _Bounded:
    """One entity label's values: the first ``MAX_VALUES_PER_LABEL`` distinct ones pass, later ones overflow."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= MAX_VALUES_PER_LABEL:
            return OVERFLOW_VALUE
        self._seen.add(value)
        return value


class _Usage:
    """Totals of one label series; requests are further split by route and status."""

    __slots__ = ("completion_tokens", "prompt_tokens", "requests", "spend_nanos")

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.spend_nanos = 0
        self.requests: dict[str, dict[RequestStatus, int]] = {}


_LabelValue = Callable[[Ticket, SpendRecord], str]


def key_label(key: Entity) -> str:
    return key.alias or key.id[:KEY_HASH_PREFIX_CHARS]


class GatewayMetrics:
    """The gateway's metrics. ``recorded`` is the charger's spend observer; the charge flow calls ``refused``
    and ``upstream_replied``; ``exposition`` reads the scrape-time gauges, then renders everything."""

    def __init__(
        self,
        *,
        labels: Collection[str],
        top_n: int,
        counters: Counters,
        windows: WindowReads,
        directory: Directory,
        global_windows: tuple[Window, ...] = (),
        ledger_pending: Callable[[], int] | None = None,
    ) -> None:
        unknown = set(labels) - set(ENTITY_LABELS)
        if unknown:
            raise ValueError(f"unknown metrics labels {sorted(unknown)}; allowed: {', '.join(ENTITY_LABELS)}")
        self._counters = counters
        self.registry = CollectorRegistry(auto_describe=False)
        self._series_labels = tuple(name for name in ENTITY_LABELS if name in labels)
        self._values: tuple[_LabelValue, ...] = tuple(
            _label_value(name) for name in self._series_labels if name != "tag"
        )
        self._with_tags = "tag" in labels
        self._tag_bound = _Bounded()
        self._usage: dict[tuple[str, ...], _Usage] = {}
        self.registry.register(_UsageCollector(self._usage, self._series_labels))
        refused = PromCounter(
            "ledgergate_admissions_refused",
            "LLM requests refused before reaching an upstream, by reason.",
            ["reason"],
            registry=self.registry,
        )
        # Every reason is a series from the start: a rate() over a series that appears late misses its first bump.
        self._refused = {reason: refused.labels(reason.value) for reason in RefusalReason}
        self._latency = Histogram(
            "ledgergate_upstream_latency_seconds",
            "Seconds from sending a request upstream to its response headers (streams) or whole reply (JSON).",
            ["model"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self._latency_by_model: dict[str, Histogram] = {}
        self._holds = Gauge(
            "ledgergate_holds_in_flight",
            "Budget holds of admitted requests not settled yet (with Redis: of every instance).",
            registry=self.registry,
        )
        over_holds = PromCounter(
            "ledgergate_over_holds",
            "Requests whose upstream reported more output tokens (or cost) than their hold paid for: a provider "
            "that ignored the output cap it was sent. Charged as reported.",
            ["model"],
            registry=self.registry,
        )
        self._over_holds = over_holds
        self.budgets = BudgetRemaining(top_n, windows, directory, global_windows)
        self.registry.register(self.budgets)
        self._ledger_pending_count = ledger_pending
        self._ledger_pending = Gauge(
            "ledgergate_ledger_pending_records",
            "Spend records served but not in the database yet (waiting in memory or in the local spill file).",
            registry=self.registry,
        )

    # -- hot path ------------------------------------------------------------------------------------------------

    def recorded(self, ticket: Ticket, record: SpendRecord) -> None:
        """A spend record is in the ledger: count the request, its tokens and its cost."""
        try:
            base = tuple([value(ticket, record) for value in self._values])
            if self._with_tags:
                for tag in record.tags or ("",):
                    self._count((*base, self._tag_bound(tag)), record)
            else:
                self._count(base, record)
            self.budgets.charged(ticket)
            if exceeds_hold(ticket.hold_nanos, ticket.output_tokens_held, record.cost_nanos, record.completion_tokens):
                self._over_holds.labels(record.model).inc()
        except Exception:  # called inside the charge: a metrics bug must never fail a settlement
            log.exception("metrics: cannot count request %s", record.request_id)

    def _count(self, series: tuple[str, ...], record: SpendRecord) -> None:
        usage = self._usage.get(series)
        if usage is None:
            usage = self._usage[series] = _Usage()
        usage.prompt_tokens += record.prompt_tokens
        usage.completion_tokens += record.completion_tokens
        usage.spend_nanos += record.cost_nanos
        by_status = usage.requests.get(record.route)
        if by_status is None:
            by_status = usage.requests[record.route] = {}
        by_status[record.status] = by_status.get(record.status, 0) + 1

    def refused(self, reason: RefusalReason) -> None:
        self._refused[reason].inc()

    def upstream_replied(self, model: str, sent_at: float) -> None:
        """``sent_at``: ``time.perf_counter()`` when the request went upstream."""
        child = self._latency_by_model.get(model)
        if child is None:
            child = self._latency_by_model[model] = self._latency.labels(model)
        child.observe(time.perf_counter() - sent_at)

    # -- scrape --------------------------------------------------------------------------------------------------

    async def exposition(self) -> bytes:
        """The Prometheus text format (``CONTENT_TYPE``), with the scrape-time gauges read first."""
        try:
            self._holds.set(await self._counters.held_count())
        except CounterStoreUnavailable:
            self._holds.set(math.nan)  # unknown, not zero: an outage must not look like an idle gateway
        if self._ledger_pending_count is not None:
            self._ledger_pending.set(self._ledger_pending_count())
        await self.budgets.refresh()
        return generate_latest(self.registry)


def _label_value(name: str) -> _LabelValue:
    bound = _Bounded()
    if name == "model":
        # Bounded by the configuration already: an unrouted model is refused before any record is written.
        return lambda ticket, record: record.model
    if name == "key":
        return lambda ticket, record: bound(key_label(ticket.key))
    if name == "team":
        return lambda ticket, record: bound(record.team_id or "")
    if name == "customer":
        return lambda ticket, record: bound(record.customer_id or "")
    raise ValueError(f"no per-record value for label {name!r}")


class _UsageCollector(Collector):
    """Renders the integer totals as counter families at scrape time (spend: nanos -> USD once, exactly)."""

    def __init__(self, usage: dict[tuple[str, ...], _Usage], labels: tuple[str, ...]) -> None:
        self._usage = usage
        self._labels = labels

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "ledgergate_requests",
            "LLM requests that reached an upstream and were recorded in the ledger, by route and final status.",
            labels=["route", "status", *self._labels],
        )
        tokens = CounterMetricFamily(
            "ledgergate_tokens", "Tokens charged, by direction.", labels=["direction", *self._labels]
        )
        spend = CounterMetricFamily("ledgergate_spend_usd", "Spend charged, in USD.", labels=list(self._labels))
        for series, usage in list(self._usage.items()):
            values = list(series)
            for route, by_status in list(usage.requests.items()):
                for status, count in list(by_status.items()):
                    requests.add_metric([route, status.value, *values], count)
            tokens.add_metric(["prompt", *values], usage.prompt_tokens)
            tokens.add_metric(["completion", *values], usage.completion_tokens)
            spend.add_metric(values, usage.spend_nanos / NANOS_PER_USD)
        return [requests, tokens, spend]


class BudgetRemaining(Collector):
    """``ledgergate_budget_remaining_usd`` of the top N (entity, window) pairs by spend in the current period.

    Candidates are the entities recently charged on a window with a limit (a bounded, least-recently-charged-first
    set); their windows are read at scrape time, so a new period or a changed limit shows at once.
    """

    def __init__(
        self, top_n: int, windows: WindowReads, directory: Directory, global_windows: tuple[Window, ...]
    ) -> None:
        self._top_n = top_n
        self._capacity = top_n * RECENT_ENTITIES_PER_SERIES
        self._windows = windows
        self._directory = directory
        self._global_windows = global_windows
        self._recent: dict[tuple[str, str], None] = {}  # insertion order: least recently charged first
        self._rows: list[tuple[str, str, str, float]] = []

    def charged(self, ticket: Ticket) -> None:
        if not self._capacity:
            return
        recent = self._recent
        for line in ticket.lines:
            if line.limit_nanos is None:
                continue
            owner = (line.key.entity_type, line.key.entity_id)
            if owner in recent:
                del recent[owner]  # re-inserted below: now the most recently charged
            elif len(recent) >= self._capacity:
                del recent[next(iter(recent))]
            recent[owner] = None

    async def refresh(self) -> None:
        try:
            self._rows = await self._top_rows()
        except Exception:
            # A scrape must still deliver the request counters when the database is unreachable.
            log.warning("metrics: cannot read budget windows", exc_info=True)
            self._rows = []

    async def _top_rows(self) -> list[tuple[str, str, str, float]]:
        ranked: list[tuple[int, tuple[str, str, str, float]]] = []
        for entity_type, entity_id in list(self._recent):
            entity = await self._entity(EntityType(entity_type), entity_id)
            if entity is None:
                continue
            windows = [w for w in await self._directory.effective_windows(entity) if w.max_budget_nanos is not None]
            if not windows:
                continue
            name = key_label(entity) if entity.type is EntityType.KEY else entity.id
            for window, (state, _) in zip(windows, await self._windows.window_states(entity, windows), strict=True):
                limit = window.max_budget_nanos or 0
                label = window.label if window.model is None else f"{window.label}@{window.model}"
                remaining_usd = (limit - state.spent_nanos) / NANOS_PER_USD
                ranked.append((state.spent_nanos, (entity_type, name, label, remaining_usd)))
        ranked.sort(key=lambda item: item[0], reverse=True)
        rows: list[tuple[str, str, str, float]] = []
        seen: set[tuple[str, str, str]] = set()
        for _, row in ranked:
            if row[:3] not in seen:  # two keys may share an alias: one series each way would be a duplicate
                seen.add(row[:3])
                rows.append(row)
                if len(rows) == self._top_n:
                    break
        return rows

    async def _entity(self, entity_type: EntityType, entity_id: str) -> Entity | None:
        if entity_type is EntityType.GLOBAL:
            return Entity(EntityType.GLOBAL, entity_id, budget_limits=self._global_windows, alias="proxy")
        return await self._directory.get(entity_type, entity_id)

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "ledgergate_budget_remaining_usd",
            "max_budget minus settled spend in the current period, for the top-N windows by spend.",
            labels=["entity_type", "entity_id", "window"],
        )
        for entity_type, entity_id, window, remaining_usd in self._rows:
            family.add_metric([entity_type, entity_id, window], remaining_usd)
        return [family]
