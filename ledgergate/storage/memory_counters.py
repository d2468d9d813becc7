"""In-process counters for the single-machine setup: atomic because nothing awaits between check and hold."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from ledgergate.domain.admission import (
    Admitted,
    BudgetMode,
    CounterKey,
    CounterLine,
    Decision,
    LineState,
    decide,
    hold_amount,
    settle_amount,
)
from ledgergate.domain.ports import Clock, CounterLoader

_SETTLED_MEMORY = 100_000  # how many settled hold ids are remembered to make settle repeat-safe


@dataclass(slots=True)
class _Hold:
    keys: tuple[CounterKey, ...]
    amounts: tuple[int, ...]  # held on each key (cost lines: the decided hold; rate lines: their own amount)
    hold_nanos: int  # the decided cost hold: what a retried try_hold answers
    expires_at_s: float


class MemoryCounters:
    """Counters in a dict; loaded lazily from the ledger, so a restart rebuilds them exactly, never additively."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._spent: dict[CounterKey, int] = {}
        self._held: dict[CounterKey, int] = {}
        self._period_end_s: dict[CounterKey, int] = {}
        self._holds: dict[str, _Hold] = {}
        self._expiry_heap: list[tuple[float, str]] = []
        self._settled: dict[str, None] = {}
        self._loading: dict[CounterKey, asyncio.Future[None]] = {}
        self._next_sweep_s = 0.0

    async def _ensure_loaded(self, lines: Sequence[CounterLine], loader: CounterLoader) -> None:
        missing = [line for line in lines if line.key not in self._spent]
        if not missing:
            return
        waits = [self._loading[line.key] for line in missing if line.key in self._loading]
        to_load = [line for line in missing if line.key not in self._loading]
        if to_load:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            for line in to_load:
                self._loading[line.key] = future
            try:
                sums = await loader([line.key for line in to_load], [line.period_end_s for line in to_load])
                for line, spent in zip(to_load, sums, strict=True):
                    # A counter loaded meanwhile by a concurrent caller already holds the same ledger value.
                    self._spent.setdefault(line.key, spent)
                    self._period_end_s[line.key] = line.period_end_s
                future.set_result(None)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # mark retrieved: the waiters re-raise it themselves
                raise
            finally:
                for line in to_load:
                    self._loading.pop(line.key, None)
        for wait in waits:
            await wait

    async def _loaded(self, lines: Sequence[CounterLine], loader: CounterLoader) -> None:
        """Return with every line's counter present. The sweep of another caller may forget a counter of a period
        that ended while this one awaited its load (1-minute rate periods end often): then load it again."""
        while any(line.key not in self._spent for line in lines):
            await self._ensure_loaded(lines, loader)

    def _expire_holds(self, now_s: float) -> None:
        heap = self._expiry_heap
        while heap and heap[0][0] <= now_s:
            _, hold_id = heapq.heappop(heap)
            hold = self._holds.get(hold_id)
            if hold is not None and hold.expires_at_s <= now_s:
                self._drop_hold(hold_id, hold)
        if now_s >= self._next_sweep_s:
            self._next_sweep_s = now_s + 60
            self._forget_ended_periods(now_s)

    def _forget_ended_periods(self, now_s: float) -> None:
        ended = [key for key, end_s in self._period_end_s.items() if end_s <= now_s and not self._held.get(key)]
        for key in ended:
            self._spent.pop(key, None)
            self._held.pop(key, None)
            self._period_end_s.pop(key, None)

    def _drop_hold(self, hold_id: str, hold: _Hold) -> None:
        del self._holds[hold_id]
        for key, amount in zip(hold.keys, hold.amounts, strict=True):
            remaining = self._held.get(key, 0) - amount
            if remaining:
                self._held[key] = remaining
            else:
                self._held.pop(key, None)

    async def try_hold(
        self,
        hold_id: str,
        lines: Sequence[CounterLine],
        max_cost_nanos: int,
        min_cost_nanos: int,
        mode: BudgetMode,
        expires_at_s: float,
        loader: CounterLoader,
    ) -> Decision:
        self._expire_holds(self._clock.now_s())
        await self._loaded(lines, loader)
        # From here to the end nothing awaits: check and hold are one atomic step on this event loop.
        existing = self._holds.get(hold_id)
        if existing is not None:  # a retried hold is the same hold
            return Admitted(existing.hold_nanos)
        spent, held = self._spent, self._held
        states = [LineState(spent[line.key], held.get(line.key, 0)) for line in lines]
        limits = [line.limit_nanos for line in lines]
        units = [line.unit for line in lines]
        decision = decide(states, limits, max_cost_nanos, min_cost_nanos, mode, units)
        if isinstance(decision, Admitted):
            keys = tuple(line.key for line in lines)
            amounts = tuple(hold_amount(line, decision) for line in lines)
            for key, amount in zip(keys, amounts, strict=True):
                held[key] = held.get(key, 0) + amount
            self._holds[hold_id] = _Hold(keys, amounts, decision.hold_nanos, expires_at_s)
            heapq.heappush(self._expiry_heap, (expires_at_s, hold_id))
        return decision

    async def settle(self, hold_id: str, lines: Sequence[CounterLine], cost_nanos: int) -> None:
        if hold_id in self._settled:
            return
        hold = self._holds.get(hold_id)
        if hold is not None:
            self._drop_hold(hold_id, hold)
        for line in lines:
            # A counter that was forgotten (its period ended) needs no update: the ledger has the record.
            if line.key in self._spent:
                self._spent[line.key] += settle_amount(line, cost_nanos)
        self._settled[hold_id] = None
        if len(self._settled) > _SETTLED_MEMORY:
            del self._settled[next(iter(self._settled))]

    async def release(self, hold_id: str) -> None:
        hold = self._holds.get(hold_id)
        if hold is not None:
            self._drop_hold(hold_id, hold)

    async def adjust(self, line: CounterLine, delta_nanos: int, loader: CounterLoader) -> LineState:
        await self._loaded([line], loader)
        self._spent[line.key] += delta_nanos
        return LineState(self._spent[line.key], self._held.get(line.key, 0))

    async def read(self, lines: Sequence[CounterLine], loader: CounterLoader) -> list[LineState]:
        # Expired holds are dropped first, as Redis does.
        self._expire_holds(self._clock.now_s())
        await self._loaded(lines, loader)
        return [LineState(self._spent[line.key], self._held.get(line.key, 0)) for line in lines]

    async def held_count(self) -> int:
        self._expire_holds(self._clock.now_s())
        return len(self._holds)
