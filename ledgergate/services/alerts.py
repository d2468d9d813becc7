"""Budget alerts: after a charge settles, every threshold its windows reached is claimed once and sent by webhook.

Off the response path: ``settled`` only schedules the check. Exactly once per (entity, window, period,
threshold), across instances and restarts: the alert store's unique claim decides the one deliverer. A
deliverer that dies leaves a pending alert whose lease runs out; the resend sweep (at start-up, then
periodically) takes it over, for alerts younger than a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

import orjson

from ledgergate.domain.admission import CounterKey, CounterLine
from ledgergate.domain.alerts import (
    DEFAULT_ALERT_THRESHOLDS,
    Alert,
    DeliveryStatus,
    parse_alert_thresholds,
    reached_crossings,
)
from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.money import nanos_to_usd
from ledgergate.domain.ports import Clock, CounterLoader, Counters
from ledgergate.domain.windows import LIFETIME, Window, epoch_us, split_window_key
from ledgergate.services.directory import Directory
from ledgergate.services.request_charging import Ticket
from ledgergate.services.views import iso_time, usd

log = logging.getLogger("ledgergate.alerts")

CHECK_COALESCE_S = 0.05  # alerts may lag a charge by this much; a busy window is checked once per interval
RESEND_MAX_AGE_S = 86_400  # older undelivered alerts are stale news: left as they are
RESEND_ROUNDS = 3  # delivery rounds (of max_attempts each) an alert gets in all before it stays failed
RESEND_BATCH = 100
LEASE_MARGIN_S = 30.0
SHUTDOWN_GRACE_S = 2.0  # deliveries still running at shutdown get this long before their leases are released
_MAX_REMEMBERED = 50_000

_Budget = tuple[Entity, Window | None, tuple[Window, ...]]  # an entity, its primary window, all its windows


class AlertStore(Protocol):
    async def claim(self, alert: Alert, lease_until_us: int) -> bool: ...
    async def record_failure(self, alert_id: str, attempts: int, error: str) -> None: ...
    async def finish(
        self, alert_id: str, status: DeliveryStatus, attempts: int, error: str | None, delivered_at_us: int | None
    ) -> None: ...
    async def take_over(self, alert_id: str, now_us: int, lease_until_us: int) -> bool: ...
    async def release(self, alert_ids: Sequence[str]) -> None: ...
    async def resendable(self, created_since_us: int, now_us: int, max_attempts: int, limit: int) -> list[Alert]: ...
    async def list(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[Alert]: ...


class DeliveryOutcome(Protocol):
    @property
    def delivered(self) -> bool: ...
    @property
    def attempts(self) -> int: ...
    @property
    def error(self) -> str | None: ...


class AlertSender(Protocol):
    @property
    def max_attempts(self) -> int: ...
    @property
    def max_round_s(self) -> float: ...
    async def deliver(
        self,
        url: str,
        body: bytes,
        *,
        headers: dict[str, str] | None = None,
        on_failure: Callable[[int, str], Awaitable[None]] | None = None,
        attempts_before: int = 0,
    ) -> DeliveryOutcome: ...
    async def aclose(self) -> None: ...


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The webhook's JSON document (also the shape ``GET /alerts`` lists, plus delivery fields there)."""
    period_key, model = split_window_key(alert.window)
    lifetime = period_key == LIFETIME
    return {
        "event": alert.event.value,
        "entity": alert.entity_type,
        "entity_id": alert.entity_id,
        "entity_name": alert.entity_name,
        "window": alert.budget_duration,
        "model": model,
        "threshold": alert.fraction,
        "spend": nanos_to_usd(alert.spend_nanos),
        "max_budget": nanos_to_usd(alert.max_budget_nanos),
        "soft_budget": usd(alert.soft_budget_nanos),
        "reset_at": None if lifetime else iso_time(alert.period_end_s),
        "period_start": None if lifetime else iso_time(alert.period_start_s),
        "alert_id": alert.alert_id,
        "created_at": iso_time(alert.created_at_us / 1_000_000),
    }


def _label(window: Window | None, window_key: str) -> str | None:
    """The window as the admin wrote it (``daily``); its canonical key if it was removed since the admission."""
    if split_window_key(window_key)[0] == LIFETIME:
        return None
    return window.label if window is not None else window_key


def _entity_name(entity: Entity) -> str:
    key_name = entity.extra.get("key_name") if entity.type is EntityType.KEY else None
    return entity.alias or (key_name if isinstance(key_name, str) else None) or entity.id


class BudgetAlerter:
    def __init__(
        self,
        *,
        directory: Directory,
        counters: Counters,
        loader: CounterLoader,
        store: AlertStore,
        clock: Clock,
        sender: AlertSender | None = None,
        webhook_url: str | None = None,
        default_thresholds: tuple[float, ...] = DEFAULT_ALERT_THRESHOLDS,
        global_windows: tuple[Window, ...] = (),
        resend_interval_s: float = 300.0,
    ) -> None:
        self._directory = directory
        self._counters = counters
        self._loader = loader
        self.store = store
        self._clock = clock
        self._sender = sender if webhook_url else None
        self._webhook_url = webhook_url
        self._default_thresholds = default_thresholds
        self._global_windows = global_windows
        self._resend_interval_s = resend_interval_s
        # What this instance claimed or saw claimed: a window that stays above a threshold costs no database
        # round trip per request. Lost on restart, which only costs one refused claim per threshold.
        self._seen: dict[tuple[CounterKey, str], int] = {}
        self._unchecked: dict[CounterKey, tuple[Ticket, CounterLine]] = {}  # charged since the last check
        self._check_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_flight: set[str] = set()  # alert ids this instance is delivering
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Start the resend sweep (its first pass runs now: alerts a crash left undelivered)."""
        if self._sender is not None and self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="budget-alert-resend")

    def settled(self, ticket: Ticket, cost_nanos: int) -> None:
        """Called by the charger once a charge is in the counters; schedules the check and returns.

        Checks are coalesced: the windows charged within ``CHECK_COALESCE_S`` are checked once, with their
        counters as they are then, so a busy window costs one check per interval rather than one per request.
        """
        if cost_nanos <= 0 or self._closing:
            return
        for line in ticket.lines:
            if line.limit_nanos is not None:
                self._unchecked[line.key] = (ticket, line)
        if self._unchecked and not self._check_scheduled:
            self._check_scheduled = True
            self._spawn(self._check_unchecked())

    async def _check_unchecked(self) -> None:
        try:
            await asyncio.sleep(CHECK_COALESCE_S)
        finally:
            self._check_scheduled = False
        unchecked, self._unchecked = self._unchecked, {}
        await self._check_lines(list(unchecked.values()))

    async def check(self, ticket: Ticket) -> list[Alert]:
        """Claim (and start sending) every alert the ticket's windows have reached; returns the claimed ones."""
        return await self._check_lines([(ticket, line) for line in ticket.lines if line.limit_nanos is not None])

    async def _check_lines(self, charged: Sequence[tuple[Ticket, CounterLine]]) -> list[Alert]:
        """``charged``: each window with a ticket that charged it (the key entity of a key window comes from it)."""
        if not charged:
            return []
        lines = [line for _, line in charged]
        states = await self._counters.read(lines, self._loader)
        claimed: list[Alert] = []
        budgets: dict[tuple[str, str], _Budget | None] = {}
        for (ticket, line), state in zip(charged, states, strict=True):
            owner = (line.key.entity_type, line.key.entity_id)
            if owner not in budgets:
                budgets[owner] = await self._budget_of(ticket, line.key)
            budget = budgets[owner]
            if budget is None:
                continue
            entity, primary, windows = budget
            is_primary = primary is not None and primary.key == line.key.window
            soft = entity.soft_budget_nanos if is_primary else None
            window = next((w for w in windows if w.key == line.key.window), None)
            limit = line.limit_nanos or 0
            for crossing in reached_crossings(state.spent_nanos, limit, self._thresholds(entity), soft):
                seen_key = (line.key, crossing.threshold)
                if seen_key in self._seen:
                    continue
                self._remember(seen_key, line.period_end_s)
                alert = Alert(
                    alert_id=uuid.uuid4().hex,
                    event=crossing.event,
                    entity_type=line.key.entity_type,
                    entity_id=line.key.entity_id,
                    entity_name=_entity_name(entity),
                    window=line.key.window,
                    budget_duration=_label(window, line.key.window),
                    period_start_s=line.key.period_start_s,
                    period_end_s=line.period_end_s,
                    threshold=crossing.threshold,
                    spend_nanos=state.spent_nanos,
                    max_budget_nanos=limit,
                    soft_budget_nanos=entity.soft_budget_nanos,
                    created_at_us=epoch_us(self._clock.now_s()),
                    status=DeliveryStatus.PENDING if self._sender is not None else DeliveryStatus.UNSENT,
                )
                if await self._claim(alert, seen_key):
                    claimed.append(alert)
        return claimed

    async def _claim(self, alert: Alert, seen_key: tuple[CounterKey, str]) -> bool:
        try:
            won = await self.store.claim(alert, self._lease_until_us())
        except Exception:
            self._seen.pop(seen_key, None)  # the next settle in this period tries again
            log.exception("could not log budget alert %s of %s %s", alert.threshold, alert.entity_type, alert.entity_id)
            return False
        if won and self._sender is not None:
            self._start_delivery(alert)
        return won

    async def _budget_of(self, ticket: Ticket, key: CounterKey) -> _Budget | None:
        """The charged entity, its primary window and all its windows (own and shared-budget ones)."""
        entity_type = EntityType(key.entity_type)
        if entity_type is EntityType.GLOBAL:
            proxy = Entity(EntityType.GLOBAL, key.entity_id, budget_limits=self._global_windows, alias="proxy")
            return proxy, None, self._global_windows
        entity = ticket.key if entity_type is EntityType.KEY else await self._directory.get(entity_type, key.entity_id)
        if entity is None:
            return None
        primary, limits = await self._directory.effective_budget(entity)
        return entity, primary, (primary, *limits) if primary is not None else limits

    def _thresholds(self, entity: Entity) -> tuple[float, ...]:
        stored = entity.extra.get("alert_thresholds")
        if stored is None:
            return self._default_thresholds
        try:
            return parse_alert_thresholds(stored)
        except InvalidInput:  # written before validation existed, or by hand: the defaults still alert
            return self._default_thresholds

    def _remember(self, seen_key: tuple[CounterKey, str], period_end_s: int) -> None:
        if len(self._seen) >= _MAX_REMEMBERED:
            now_s = self._clock.now_s()
            self._seen = {key: end_s for key, end_s in self._seen.items() if end_s > now_s}
            if len(self._seen) >= _MAX_REMEMBERED:
                self._seen.clear()  # forgetting costs refused claims, never a duplicate alert
        self._seen[seen_key] = period_end_s

    def _lease_until_us(self) -> int:
        round_s = self._sender.max_round_s if self._sender is not None else 0.0
        return epoch_us(self._clock.now_s() + round_s + LEASE_MARGIN_S)

    def _start_delivery(self, alert: Alert) -> None:
        # In flight from now on: a shutdown before the task even starts must still give its lease back.
        self._in_flight.add(alert.alert_id)
        self._spawn(self._deliver(alert))

    async def _deliver(self, alert: Alert) -> None:
        sender, url = self._sender, self._webhook_url
        if sender is None or url is None:
            self._in_flight.discard(alert.alert_id)
            return

        async def record_failure(attempts: int, error: str) -> None:
            log.warning("budget alert %s: webhook attempt %d failed: %s", alert.alert_id, attempts, error)
            try:
                await self.store.record_failure(alert.alert_id, attempts, error)
            except Exception:
                log.exception("could not record a failed attempt of budget alert %s", alert.alert_id)

        try:
            result = await sender.deliver(
                url,
                orjson.dumps(alert_payload(alert)),
                headers={"x-ledgergate-alert-id": alert.alert_id},
                on_failure=record_failure,
                attempts_before=alert.attempts,
            )
            status = DeliveryStatus.DELIVERED if result.delivered else DeliveryStatus.FAILED
            delivered_at_us = epoch_us(self._clock.now_s()) if result.delivered else None
            await self.store.finish(
                alert.alert_id, status, alert.attempts + result.attempts, result.error, delivered_at_us
            )
        except Exception:
            # The lease runs out and the sweep retries: possibly a second POST, which alert_id lets receivers spot.
            log.exception("delivering budget alert %s failed", alert.alert_id)
        self._in_flight.discard(alert.alert_id)  # not reached when cancelled: aclose releases the lease

    async def resend_undelivered(self) -> int:
        """Take over undelivered alerts younger than a day that nobody is delivering; returns how many."""
        if self._sender is None:
            return 0
        now_us = epoch_us(self._clock.now_s())
        candidates = await self.store.resendable(
            now_us - RESEND_MAX_AGE_S * 1_000_000, now_us, self._sender.max_attempts * RESEND_ROUNDS, RESEND_BATCH
        )
        taken = 0
        for alert in candidates:
            if alert.alert_id in self._in_flight:
                continue
            if await self.store.take_over(alert.alert_id, now_us, self._lease_until_us()):
                self._start_delivery(alert)
                taken += 1
        return taken

    async def _sweep_loop(self) -> None:
        while not self._closing:
            try:
                await self.resend_undelivered()
            except Exception:
                log.exception("the budget alert resend sweep failed; retrying in %s s", self._resend_interval_s)
            await asyncio.sleep(self._resend_interval_s)

    async def alerts(
        self, *, entity_type: str | None, entity_id: str | None, status: str | None, limit: int
    ) -> list[Alert]:
        return await self.store.list(entity_type=entity_type, entity_id=entity_id, status=status, limit=limit)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("budget alert check failed", exc_info=task.exception())

    async def wait_idle(self) -> None:
        """Wait for every scheduled check and delivery (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE_S
        # Checks finishing now may start deliveries: wait for those too, until the grace period is over.
        while self._tasks and (remaining_s := deadline - loop.time()) > 0:
            await asyncio.wait(list(self._tasks), timeout=remaining_s)
        while self._tasks:
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._in_flight:
            try:
                await self.store.release(sorted(self._in_flight))
            except Exception:
                log.exception("could not release the leases of interrupted budget alert deliveries")
        if self._sender is not None:
            await self._sender.aclose()
