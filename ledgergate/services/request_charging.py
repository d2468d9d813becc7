"""Where a request is charged: who pays, the hold placed before forwarding, and the settlement after.

``admit`` and ``settle`` share one ``Ticket``: the charge targets and counter lines are computed once, by
``charge_targets``, so the budget check and the charge can never disagree.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledgergate.deployments import Deployment
from ledgergate.domain.admission import Admitted, BudgetMode, CounterLine, LineState
from ledgergate.domain.charging import EntityRef, EntityType, RequestParties, charge_targets, request_tags
from ledgergate.domain.entities import Entity
from ledgergate.domain.ledger import RequestStatus, SpendRecord
from ledgergate.domain.model_access import first_refusing, not_allowed_message
from ledgergate.domain.output_caps import DEFAULT_MAX_N, bounded_cap, completions_per_request, exceeds_hold
from ledgergate.domain.ports import Clock, Counters, CounterStoreUnavailable, Ledger, SettleObserver, SpendObserver
from ledgergate.domain.pricing import Usage, cost_nanos, max_cost_nanos, output_tokens_affordable
from ledgergate.domain.rate_limits import RateLimited, RateLimits, RateLine, rate_lines, retry_after_s, with_tokens_used
from ledgergate.domain.windows import PeriodClock, Window, epoch_us
from ledgergate.services.directory import Directory
from ledgergate.services.window_reads import WindowReads, counter_key

log = logging.getLogger("ledgergate.charging")


@dataclass(frozen=True, slots=True)
class LlmCall:
    """What the route extracted from one LLM request."""

    request_id: str
    route: str
    model: str
    deployment: Deployment
    input_tokens_bound: int  # an upper bound of the prompt's tokens (see docs/decisions/0002)
    requested_max_tokens: int | None  # the largest output cap the client sent, in any field
    n: int = 1
    best_of: int | None = None
    produces_output: bool = True  # False for embeddings: nothing to cap, no output tokens to hold
    customer_id: str | None = None
    client_tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ticket:
    call: LlmCall
    key: Entity
    parties: RequestParties
    targets: tuple[EntityRef, ...]
    lines: tuple[CounterLine, ...]
    hold_nanos: int
    # The per-completion output cap the hold pays for and the upstream is sent (None: the route has no output).
    max_tokens_to_send: int | None
    charged_at_us: int
    rate_lines: tuple[CounterLine, ...] = ()  # rate limits' counters, held and settled with ``lines``
    completions: int = 1  # n (or best_of): completions of up to ``max_tokens_to_send`` tokens each

    @property
    def output_tokens_held(self) -> int:
        return (self.max_tokens_to_send or 0) * self.completions

    @property
    def output_cap_clamped(self) -> bool:
        """The cap sent is below what the client asked for (or, without a cap, the deployment's): by the
        deployment's cap or a strict-mode clamp."""
        asked = self.call.requested_max_tokens or self.call.deployment.max_output_tokens
        return self.max_tokens_to_send is not None and self.max_tokens_to_send < asked


@dataclass(frozen=True, slots=True)
class Refusal:
    """A window that refused the request, with what the 429 body shows."""

    entity: EntityRef
    entity_name: str
    window: Window
    state: LineState
    reset_at_s: int
    retry_after_s: int | None = None  # whole seconds until the window resets (None: a lifetime window never does)


@dataclass(frozen=True, slots=True)
class EntityBlocked:
    entity: EntityRef
    reason: str


@dataclass(frozen=True, slots=True)
class ModelNotAllowed:
    """A ``models`` list of the key, its user, team, organization or a tag does not allow the requested model."""

    entity: EntityRef
    reason: str


class RequestCharger:
    def __init__(
        self,
        *,
        directory: Directory,
        counters: Counters,
        ledger: Ledger,
        clock: Clock,
        periods: PeriodClock,
        mode: BudgetMode,
        hold_ttl_s: float,
        allow_client_tags: bool,
        global_windows: tuple[Window, ...] = (),
        max_n: int = DEFAULT_MAX_N,
        settle_observers: Sequence[SettleObserver[Ticket]] = (),
        spend_observers: Sequence[SpendObserver[Ticket]] = (),
        windows: WindowReads | None = None,
    ) -> None:
        """``spend_observers`` hear of each record newly in the ledger (the metrics), ``settle_observers`` of each
        charge once it is in the counters (the budget alerter)."""
        self._directory = directory
        self._counters = counters
        self._ledger = ledger
        self._clock = clock
        self._periods = periods
        self._mode = mode
        self._hold_ttl_s = hold_ttl_s
        self._allow_client_tags = allow_client_tags
        self._global_windows = global_windows
        self._max_n = max_n
        self._settle_observers = tuple(settle_observers)
        self._spend_observers = tuple(spend_observers)
        self._windows = windows or WindowReads(directory, counters, ledger, clock, periods)

    async def parties_of(self, key: Entity, call: LlmCall | None) -> RequestParties:
        team = await self._directory.get(EntityType.TEAM, key.team_id) if key.team_id else None
        return RequestParties(
            key_id=key.id,
            user_id=key.user_id,
            team_id=key.team_id,
            team_organization_id=team.organization_id if team else None,
            key_organization_id=key.organization_id,
            customer_id=call.customer_id if call else None,
            key_tags=key.tags,
            team_tags=team.tags if team else (),
            client_tags=call.client_tags if call else (),
            allow_client_tags=self._allow_client_tags,
            has_global_budget=bool(self._global_windows),
        )

    async def _target_entity(self, key: Entity, target: EntityRef) -> Entity | None:
        if target.type is EntityType.KEY:
            return key
        if target.type is EntityType.GLOBAL:
            return Entity(EntityType.GLOBAL, target.id, budget_limits=self._global_windows, alias="proxy")
        return await self._directory.get(target.type, target.id)

    async def model_gates(self, key: Entity, targets: Sequence[EntityRef] | None = None) -> list[Entity]:
        """Every entity whose ``models`` list applies to requests of ``key`` (cached: no database round trip)."""
        if targets is None:  # /v1/models: the key, its team and their tags (no request, so no client tags)
            targets = charge_targets(await self.parties_of(key, None))
        gates = [entity for target in targets if (entity := await self._target_entity(key, target)) is not None]
        user_is_target = any(target.type is EntityType.USER for target in targets)
        if key.user_id and not user_is_target:  # a team key: its user's models restrict it too
            user = await self._directory.get(EntityType.USER, key.user_id)
            gates += [user] if user is not None else []
        return gates

    async def admit(
        self, key: Entity, call: LlmCall
    ) -> Ticket | Refusal | RateLimited | EntityBlocked | ModelNotAllowed:
        """Place a hold for the request's maximum cost on every window of every target, and one on each of their
        rate limits, in one atomic step; or refuse. A request whose ``n`` or ``best_of`` exceeds ``max_n`` raises
        ``InvalidInput`` before anything is held."""
        completions = completions_per_request(call.n, call.best_of, self._max_n)
        deployment = call.deployment
        # The cap the hold is sized by is the cap the upstream is sent (see domain/output_caps.py).
        output_cap = bounded_cap(call.requested_max_tokens, deployment.max_output_tokens) if call.produces_output else 0
        now_s = self._clock.now_s()
        parties = await self.parties_of(key, call)
        targets = charge_targets(parties)
        refusing = first_refusing(call.model, await self.model_gates(key, targets))
        if refusing is not None:
            return ModelNotAllowed(refusing.ref, not_allowed_message(refusing, call.model))
        lines: list[CounterLine] = []
        owners: list[tuple[Entity, Window]] = []
        rates: list[tuple[Entity, RateLine]] = []  # after every budget line: a budget refusal is reported first
        tokens_bound = call.input_tokens_bound + output_cap * completions
        for target in targets:
            entity = await self._target_entity(key, target)
            if entity is None:
                continue
            if entity.blocked and target.type in (EntityType.TEAM, EntityType.CUSTOMER, EntityType.USER):
                return EntityBlocked(target, f"{target.type.value} {entity.display_name()!r} is blocked")
            for window in await self._directory.effective_windows(entity):
                if window.model is not None and window.model != call.model:
                    continue  # a model window neither limits nor is charged by requests for other models
                start_s, end_s = self._periods.bounds(window, now_s)
                lines.append(CounterLine(counter_key(target, window, start_s), window.max_budget_nanos, end_s))
                owners.append((entity, window))
            limits = await self._windows.rate_limits(entity)
            rates += [(entity, rate) for rate in rate_lines(target, limits, self._periods, now_s, tokens_bound)]
        max_cost = max_cost_nanos(call.input_tokens_bound, output_cap, completions, deployment.prices)
        min_cost = max_cost_nanos(call.input_tokens_bound, min(output_cap, 1), completions, deployment.prices)
        decision = await self._counters.try_hold(
            call.request_id,
            [*lines, *(rate.line for _, rate in rates)],
            max_cost,
            min_cost,
            self._mode,
            now_s + self._hold_ttl_s,
            self._ledger.window_sums,
        )
        if not isinstance(decision, Admitted) and decision.line_index >= len(lines):
            entity, rate = rates[decision.line_index - len(lines)]
            return RateLimited(
                entity.ref,
                entity.display_name(),
                rate.field,
                rate.limit,
                decision.state,
                rate.line.key.period_start_s,
                rate.line.period_end_s if rate.resets else None,
                retry_after_s(rate, now_s),
            )
        if not isinstance(decision, Admitted):
            entity, window = owners[decision.line_index]
            line = lines[decision.line_index]
            retry_s = max(1, math.ceil(line.period_end_s - now_s)) if window.duration is not None else None
            return Refusal(entity.ref, entity.display_name(), window, decision.state, line.period_end_s, retry_s)
        max_tokens_to_send = output_cap if call.produces_output else None
        if max_tokens_to_send is not None and decision.hold_nanos < max_cost:
            # Strict mode shrank the hold: the upstream must never generate more than the hold pays for.
            affordable = output_tokens_affordable(
                decision.hold_nanos, call.input_tokens_bound, completions, deployment.prices
            )
            max_tokens_to_send = min(output_cap, affordable)
        return Ticket(
            call=call,
            key=key,
            parties=parties,
            targets=targets,
            lines=tuple(lines),
            hold_nanos=decision.hold_nanos,
            max_tokens_to_send=max_tokens_to_send,
            charged_at_us=epoch_us(now_s),
            rate_lines=tuple(rate.line for _, rate in rates),
            completions=completions,
        )

    async def settle(
        self,
        ticket: Ticket,
        usage: Usage | None,
        status: RequestStatus,
        on_recorded: Callable[[SpendRecord], None] | None = None,
    ) -> SpendRecord:
        """Write the spend record (durably, before the response completes), then turn the hold into spend.

        ``on_recorded`` is called once the record is durable (or found already in the ledger), before the counters
        are updated: what the response waits for."""
        usage = usage or Usage()
        cost = cost_nanos(usage, ticket.call.deployment.prices)
        parties = ticket.parties
        record = SpendRecord(
            request_id=ticket.call.request_id,
            key_id=ticket.key.id,
            targets=ticket.targets,
            model=ticket.call.model,
            deployment_id=ticket.call.deployment.deployment_id,
            route=ticket.call.route,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_nanos=cost,
            status=status,
            charged_at_us=ticket.charged_at_us,
            ended_at_us=epoch_us(self._clock.now_s()),
            user_id=parties.user_id,
            team_id=parties.team_id,
            organization_id=parties.team_organization_id or parties.key_organization_id,
            customer_id=parties.customer_id,
            tags=request_tags(parties),
        )
        try:
            inserted = await self._ledger.append(record)
        except BaseException:
            # Without a durable record there is no charge: free the hold rather than pin the budget.
            try:
                await self._counters.release(ticket.call.request_id)
            except CounterStoreUnavailable:
                log.warning("counter store unavailable releasing %s; its hold expires", ticket.call.request_id)
            raise
        if inserted and exceeds_hold(ticket.hold_nanos, ticket.output_tokens_held, cost, usage.completion_tokens):
            # Charged as reported (the ledger is the truth); the upstream ignored the cap it was sent.
            log.warning(
                "over-hold: request %s on %s reported %d output tokens costing %d nanos; %d tokens / %d nanos held",
                record.request_id,
                record.deployment_id,
                usage.completion_tokens,
                cost,
                ticket.output_tokens_held,
                ticket.hold_nanos,
            )
        if inserted:
            for spend_observer in self._spend_observers:
                spend_observer.recorded(ticket, record)
        if on_recorded is not None:
            on_recorded(record)
        try:
            if not inserted:  # settled before (another process, or a retry): the counters have it already
                await self._counters.release(ticket.call.request_id)
                return record
            rate_lines_used = tuple(with_tokens_used(line, usage.total_tokens) for line in ticket.rate_lines)
            await self._counters.settle(ticket.call.request_id, ticket.lines + rate_lines_used, cost)
        except CounterStoreUnavailable:
            # The charge is in the ledger and the client was served: answer normally. The hold expires and the
            # counter store recounts the window from the ledger (docs/deployment.md).
            log.warning("counter store unavailable while settling %s; ledger has it", ticket.call.request_id)
            return record
        for observer in self._settle_observers:
            observer.settled(ticket, cost)
        return record

    async def window_states(self, entity: Entity, windows: Sequence[Window]) -> list[tuple[LineState, int]]:
        """Current (spent, held) and reset instant of each window, for views and resets."""
        return await self._windows.window_states(entity, windows)

    async def rate_limits(self, entity: Entity) -> RateLimits:
        return await self._windows.rate_limits(entity)

    async def rate_states(self, entity: Entity) -> list[tuple[RateLine, LineState]]:
        return await self._windows.rate_states(entity)

    def counter_line(self, entity: EntityRef, window: Window) -> CounterLine:
        return self._windows.counter_line(entity, window)
