"""The interfaces the services need from the outside world; adapters in ``storage`` implement them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Protocol

from ledgergate.domain.admission import BudgetMode, CounterKey, CounterLine, Decision, LineState
from ledgergate.domain.charging import EntityRef
from ledgergate.domain.ledger import Adjustment, SpendRecord
from ledgergate.domain.spend_filters import Dimension, LogFilter, ReportRow


class CounterStoreUnavailable(RuntimeError):
    """The shared counter store (Redis) cannot be used right now. Admission fails closed: a request that cannot
    place its hold is refused (503), never forwarded without one."""


class Clock(Protocol):
    def now_s(self) -> float:
        """Seconds since the epoch, UTC."""
        ...


CounterLoader = Callable[[Sequence[CounterKey], Sequence[int]], Awaitable[Sequence[int]]]
"""Computes counters' spend from the ledger: (keys, their period ends) -> spent nanos, in order."""


class Counters(Protocol):
    """Spent and held nanos per window period; a cache of the ledger that admission reads and writes atomically."""

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
        """Check every line and place the hold on all of them, or on none: one atomic step.

        Lines whose counter is absent (new period, restart, lost cache) are first computed with ``loader``.
        """
        ...

    async def settle(self, hold_id: str, lines: Sequence[CounterLine], cost_nanos: int) -> None:
        """Turn the hold into ``cost_nanos`` of spend (also after the hold expired); repeat-safe per hold id."""
        ...

    async def release(self, hold_id: str) -> None:
        """Drop the hold without spend (upstream error before any output)."""
        ...

    async def adjust(self, line: CounterLine, delta_nanos: int, loader: CounterLoader) -> LineState:
        """Add ``delta_nanos`` to one counter, loading it first if absent. The caller writes the adjustment
        record *after* this (and adjusts back if that write fails), so a load never sees it twice."""
        ...

    async def read(self, lines: Sequence[CounterLine], loader: CounterLoader) -> list[LineState]: ...

    async def held_count(self) -> int: ...


class Ledger(Protocol):
    async def append(self, record: SpendRecord) -> bool:
        """Durably store ``record`` (group commit); returns once committed. Idempotent on ``request_id``:
        False when the request id was already recorded (nothing written)."""
        ...

    async def add_adjustment(self, adjustment: Adjustment) -> None: ...

    async def window_sums(self, keys: Sequence[CounterKey], period_ends_s: Sequence[int]) -> list[int]:
        """Ledger spend of each counter: charges in its period plus its adjustments (a ``CounterLoader``)."""
        ...

    async def lifetime_spend(self, entity: EntityRef) -> int: ...


class StoreProbe(Protocol):
    """Reachability of a store for the readiness probe: returns when it answers, raises when it does not."""

    async def ping(self) -> None: ...


class SpendLedgerReader(Protocol):
    """The ledger's read side: records, per-day report rows and spend adjustments, as rows."""

    async def logs(self, flt: LogFilter) -> list[dict[str, Any]]: ...

    async def report(self, group_by: str, day_bounds_us: Sequence[int], flt: LogFilter) -> list[ReportRow]: ...

    async def adjustments(
        self, entity_type: str | None = None, entity_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]: ...


class SpendRollupReader(Protocol):
    """Hourly rollups of the ledger for the dashboard; ``team_ids`` restricts to records charged to those teams."""

    async def total_nanos(self, start_us: int, end_us: int, team_ids: Collection[str] | None = None) -> int: ...

    async def bucket_nanos(
        self, start_us: int, end_us: int, bucket_us: int, team_ids: Collection[str] | None = None
    ) -> dict[int, int]: ...

    async def top(
        self, dimension: Dimension, start_us: int, end_us: int, limit: int = 5, team_ids: Collection[str] | None = None
    ) -> list[tuple[str, int]]: ...
