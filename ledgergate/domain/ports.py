"""The interfaces the services need from the outside world; adapters in ``storage`` implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ledgergate.domain.admission import BudgetMode, CounterKey, CounterLine, Decision, LineState
from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.ledger import Adjustment, RequestStatus, SpendRecord
from ledgergate.domain.pricing import Usage
from ledgergate.domain.principals import Principal
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


# --- The upstream: where an admitted request is forwarded (adapter: upstream/client.py) ---


class UpstreamFailure(Exception):
    """An upstream call failed (unreachable, timed out, non-2xx stream opening). It knows the status and the
    OpenAI-style error the client is answered with; the adapter's ``UpstreamError`` family subclasses it."""

    status_code: int = 502
    error_type: str = "upstream_error"
    message: str = ""
    param: Any = None
    code: Any = None

    def to_openai_error(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


class UpstreamReply(Protocol):
    """A complete reply, whatever its status."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> bytes: ...

    @property
    def content_type(self) -> str: ...

    @property
    def is_success(self) -> bool: ...

    def error_body(self) -> bytes:
        """A non-2xx reply as an OpenAI-style error JSON."""
        ...


class UpstreamStream(Protocol):
    """An open 2xx streaming reply; ``aclose`` must be called once it is no longer read."""

    def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive; a transport failure raises ``UpstreamFailure``."""
        ...

    async def aclose(self) -> None: ...


Target_contra = TypeVar("Target_contra", contravariant=True)


class Upstream(Protocol[Target_contra]):
    """Sends a request body to a deployment (``Target_contra``); failures raise ``UpstreamFailure``."""

    async def send(
        self, deployment: Target_contra, path: str, body: bytes, protocol_headers: Mapping[str, str] | None = None
    ) -> UpstreamReply: ...

    async def stream(
        self, deployment: Target_contra, path: str, body: bytes, protocol_headers: Mapping[str, str] | None = None
    ) -> UpstreamStream:
        """Open a streaming POST; a non-2xx reply raises ``UpstreamFailure``."""
        ...


class StreamReader(Protocol):
    """Reads one upstream event stream of a route kind: forwards its bytes, keeps its usage, says how it ends."""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to forward for ``chunk`` (possibly none yet)."""
        ...

    def finish(self) -> bytes:
        """What is left to forward once the upstream stream ended."""
        ...

    @property
    def usage(self) -> Usage | None:
        """The usage the upstream reported, if it did."""
        ...

    @property
    def content_bytes(self) -> int:
        """Bytes of streamed content: bounds the output tokens of a stream without usage."""
        ...

    def ending(self) -> tuple[bytes, RequestStatus]:
        """The closing event the client gets once the charge is durable, and the stream's ledger status."""
        ...

    def error_event(self, failure: UpstreamFailure) -> bytes:
        """A failure after the status line went out, as an event of this stream's kind."""
        ...


@dataclass(frozen=True, slots=True)
class ReplyReading:
    """How the upstream's replies and streams of one route kind are read (adapters: ``upstream/reply_readings.py``,
    wired into the LLM routes by ``app.py``). Function fields rather than methods: the routes hand them to the
    charge flow (``FlowRequest``) as they are, nothing is bound per request."""

    reply_usage: Callable[[dict[str, Any]], Usage | None]  # the usage of a complete reply (None: none or malformed)
    output_bytes: Callable[[Any], int]  # bounds the output tokens of a reply without usage
    stream_reader: Callable[[bool], StreamReader]  # a new reader for one stream; True: the client asked for usage


# --- Who is calling (adapter: the Authenticator) ---


class Headers(Protocol):
    """Request headers by lower-case name."""

    def get(self, key: str, /) -> str | None: ...


Authenticate = Callable[[Headers], Awaitable[Principal]]
"""The principal a request's credentials stand for; raises the 401 error when they stand for none."""


# --- Entities (adapters: storage/sql/entities.py; with several instances storage/redis_invalidation.py) ---


class EntityStore(Protocol):
    async def get(self, entity_type: EntityType, entity_id: str) -> Entity | None: ...
    async def insert(self, entity: Entity) -> None: ...
    async def replace(self, entity: Entity, expected_version: int) -> None: ...
    async def delete(self, entity_type: EntityType, entity_id: str) -> bool: ...


class CacheCoherence(Protocol):
    """Keeps the entity caches of several instances coherent."""

    def cache_usable(self) -> bool:
        """Whether this instance may answer from its cache now (a local check: no I/O)."""
        ...

    async def announce(self, ref: EntityRef) -> None:
        """Called after a committed write: returns once no other instance can serve the entity's old state."""
        ...


# --- Observers of charges (the budget alerter, the metrics); ``Ticket_contra`` is the charger's ticket ---

Ticket_contra = TypeVar("Ticket_contra", contravariant=True)


class SettleObserver(Protocol[Ticket_contra]):
    def settled(self, ticket: Ticket_contra, cost_nanos: int) -> None:
        """Called once a charge is in the counters; must not block the response (schedule work, return)."""
        ...


class SpendObserver(Protocol[Ticket_contra]):
    def recorded(self, ticket: Ticket_contra, record: SpendRecord) -> None:
        """Called once per spend record newly in the ledger, also when the counters then cannot be charged (the
        request was served); must not block."""
        ...
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
