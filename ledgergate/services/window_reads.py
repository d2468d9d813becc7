"""Reading the counters of an entity's windows and rate limits (views, resets, metrics, admission's rate limits),
outside any charge: the charger, the views and the metrics share one."""

from __future__ import annotations

from collections.abc import Sequence

from ledgergate.domain.admission import CounterKey, CounterLine, LineState
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.ports import Clock, Counters, CounterStoreUnavailable, Ledger
from ledgergate.domain.rate_limits import RateLimits, RateLine, rate_lines
from ledgergate.domain.windows import PeriodClock, Window
from ledgergate.services.directory import Directory


def counter_key(target: EntityRef, window: Window, start_s: int) -> CounterKey:
    return CounterKey(target.type.value, target.id, window.key, start_s)


class WindowReads:
    def __init__(
        self, directory: Directory, counters: Counters, ledger: Ledger, clock: Clock, periods: PeriodClock
    ) -> None:
        self._directory = directory
        self._counters = counters
        self._ledger = ledger
        self._clock = clock
        self._periods = periods

    async def window_states(self, entity: Entity, windows: Sequence[Window]) -> list[tuple[LineState, int]]:
        """Current (spent, held) and reset instant of each window, for views and resets."""
        now_s = self._clock.now_s()
        lines = []
        for window in windows:
            start_s, end_s = self._periods.bounds(window, now_s)
            lines.append(CounterLine(counter_key(entity.ref, window, start_s), window.max_budget_nanos, end_s))
        limited = [line for line in lines if line.limit_nanos is not None]
        try:
            counted = iter(await self._counters.read(limited, self._ledger.window_sums) if limited else [])
        except CounterStoreUnavailable:
            # Views must not fail with the counter store (a new key's secret would be lost): show the ledger.
            sums = await self._ledger.window_sums(
                [line.key for line in limited], [line.period_end_s for line in limited]
            )
            counted = iter([LineState(spent, 0) for spent in sums])
        # Unlimited windows take part in no admission, so no settle keeps a counter of them current: read the ledger.
        unlimited = [line for line in lines if line.limit_nanos is None]
        summed = iter(
            await self._ledger.window_sums([line.key for line in unlimited], [line.period_end_s for line in unlimited])
        )
        states = [next(counted) if line.limit_nanos is not None else LineState(next(summed), 0) for line in lines]
        return [(state, line.period_end_s) for state, line in zip(states, lines, strict=True)]

    async def rate_limits(self, entity: Entity) -> RateLimits:
        """The entity's rate limits: its own, and its shared budget object's where it sets none of its own."""
        budget = await self._directory.get(EntityType.BUDGET, entity.budget_id) if entity.budget_id else None
        return entity.rate_limits.over(budget.rate_limits) if budget is not None else entity.rate_limits

    async def rate_states(self, entity: Entity) -> list[tuple[RateLine, LineState]]:
        """Each rate limit of the entity with its current (spent, held), for views."""
        rates = rate_lines(entity.ref, await self.rate_limits(entity), self._periods, self._clock.now_s(), 0)
        lines = [rate.line for rate in rates]
        try:
            states = await self._counters.read(lines, self._ledger.window_sums) if lines else []
        except CounterStoreUnavailable:
            sums = await self._ledger.window_sums([line.key for line in lines], [line.period_end_s for line in lines])
            states = [LineState(spent, 0) for spent in sums]
        return list(zip(rates, states, strict=True))

    def counter_line(self, entity: EntityRef, window: Window) -> CounterLine:
        start_s, end_s = self._periods.bounds(window, self._clock.now_s())
        return CounterLine(counter_key(entity, window, start_s), window.max_budget_nanos, end_s)
