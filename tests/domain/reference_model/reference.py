"""The reference model of admission and the ledger: plain lists, and the rules as the spec states them.

Spend is ``window_spend`` over the model's own records and adjustments; holds are the open tickets whose hold has
not expired. The admission rule is written out again here from SPEC section 5 rather than imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledgergate.domain.admission import BudgetMode
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import Adjustment, RequestStatus, SpendRecord, window_spend
from ledgergate.domain.windows import Window
from ledgergate.services.request_charging import Ticket
from tests.domain.reference_model.core import DEPLOYMENT, expected_period

CounterId = tuple[str, str, int]  # (key id, window key, period start)


@dataclass
class ModelTicket:
    ticket: Ticket
    admitted_at_s: float
    expires_at_s: float
    hold_nanos: int
    counters: tuple[CounterId, ...]
    expired: bool = False  # its hold lapsed before it was settled (or while it still is open)


@dataclass(frozen=True, slots=True)
class Expected:
    """What admission must answer: a hold of ``hold_nanos``, or a refusal by window ``refused_index``."""

    hold_nanos: int | None
    refused_index: int | None
    states: tuple[tuple[int, int], ...]  # (spent, held) per window of the key, as admission must see them


@dataclass
class ReferenceLedger:
    records: list[SpendRecord] = field(default_factory=list)
    adjustments: list[Adjustment] = field(default_factory=list)
    tickets: list[ModelTicket] = field(default_factory=list)  # every ticket admitted, settled or not
    open: dict[str, ModelTicket] = field(default_factory=dict)
    settled: dict[str, ModelTicket] = field(default_factory=dict)
    largest_max_cost: int = 0

    def spent(self, key_id: str, window: Window, now_s: float) -> int:
        start_s, end_s = expected_period(window, now_s)
        return window_spend(
            self.records, self.adjustments, EntityRef(EntityType.KEY, key_id), window.key, start_s, end_s
        )

    def held(self, counter: CounterId, now_s: float) -> int:
        return sum(
            ticket.hold_nanos
            for ticket in self.open.values()
            if counter in ticket.counters and now_s < ticket.expires_at_s
        )

    def expired_holds(self, counter: CounterId) -> int:
        """Holds on ``counter`` that lapsed unsettled: each may later be charged without a hold behind it."""
        return sum(ticket.hold_nanos for ticket in self.tickets if ticket.expired and counter in ticket.counters)

    def expected(
        self, key_id: str, windows: tuple[Window, ...], now_s: float, max_cost: int, min_cost: int, mode: BudgetMode
    ) -> Expected:
        states = []
        for window in windows:
            counter = (key_id, window.key, expected_period(window, now_s)[0])
            states.append((self.spent(key_id, window, now_s), self.held(counter, now_s)))
        limits = [window.max_budget_nanos for window in windows]
        if mode is BudgetMode.STANDARD:
            for index, ((spent, held), limit) in enumerate(zip(states, limits, strict=True)):
                if limit is not None and spent + held >= limit:
                    return Expected(None, index, tuple(states))
            return Expected(max_cost, None, tuple(states))
        headrooms = [
            (limit - spent - held, index)
            for index, ((spent, held), limit) in enumerate(zip(states, limits, strict=True))
            if limit is not None
        ]
        if not headrooms:
            return Expected(max_cost, None, tuple(states))
        headroom, index = min(headrooms)
        if headroom <= 0 or headroom < min_cost:
            return Expected(None, index, tuple(states))
        return Expected(min(max_cost, headroom), None, tuple(states))

    def admitted(self, ticket: ModelTicket, max_cost: int) -> None:
        self.tickets.append(ticket)
        self.open[ticket.ticket.call.request_id] = ticket
        self.largest_max_cost = max(self.largest_max_cost, max_cost)

    def advanced_to(self, now_s: float) -> None:
        for ticket in self.open.values():
            if now_s >= ticket.expires_at_s:
                ticket.expired = True

    def settle(self, request_id: str, cost_nanos: int, status: RequestStatus, ended_at_us: int) -> SpendRecord:
        ticket = self.open.pop(request_id)
        self.settled[request_id] = ticket
        call = ticket.ticket.call
        record = SpendRecord(
            request_id=request_id,
            key_id=ticket.counters[0][0],
            targets=(EntityRef(EntityType.KEY, ticket.counters[0][0]),),
            model=call.model,
            deployment_id=DEPLOYMENT.deployment_id,
            route=call.route,
            prompt_tokens=0,
            completion_tokens=0,
            cost_nanos=cost_nanos,
            status=status,
            charged_at_us=int(ticket.admitted_at_s * 1_000_000),
            ended_at_us=ended_at_us,
        )
        self.records.append(record)
        return record

    def restarted(self) -> None:
        """In-flight requests die with the process: their holds vanish and they never write a record."""
        self.open.clear()

    def total(self) -> tuple[int, int]:
        return len(self.records), sum(record.cost_nanos for record in self.records)
