"""Counters shared by every gateway instance: Redis, with each check-and-change one Lua script (atomic).

Protocol. ``try_hold`` is one script: it expires due holds, reports counters that are absent (the caller computes
them from the ledger and creates them set-if-absent, then retries), applies ``admission.decide`` to every line and
places the hold on all of them or on none. ``settle``, ``release`` and ``adjust`` are one script each. All instants
are the injected clock's, passed in ARGV (never Redis ``TIME``), so every instance and every test agree on time.

Overshoot across instances: admission of every line is one atomic step on the single Redis, so the SPEC bounds
hold whatever the number of instances: ``standard`` ends a window at most one request's maximum cost over its
limit; ``strict`` never over (while a request costs no more than its hold). A crashed instance's holds expire.

Cache of the ledger. Counters are rebuilt from the ledger by the ``CounterLoader`` whenever absent (flush,
restart, eviction, new period), created with set-if-absent semantics: concurrent rebuilds by several instances
store the ledger value once, never N times it. Within one incarnation of a counter (one load) accounting is exact:
a hold records the incarnation it was placed on, and its request's ledger record is appended after the hold, so
after that load's snapshot. A request straddling a reload (placed before a flush, settled after) cannot be
attributed exactly: the counter keeps the higher candidate value (fail closed) and is flagged ``stale``; the next
time it is seen with no hold on it, it is recomputed from the ledger (``RESYNC``), exactly.

Redis Cluster. Scripts touch keys they compute (holds found by the expiry sweep, the counters a hold was placed
on), so every key must live in one hash slot: the prefix carries the hash tag ``{lg}``. The bound this implies:
all counters live on one primary, so a cluster adds failover, not admission throughput (each admission is one
script of O(lines) hash commands plus an O(log n) index update on that primary). Replication is asynchronous: a
failover may lose the last writes (holds and settles of its last moments), which the counters on the new primary
then miss until they are reloaded; deleting the ``lg:`` keys after a failover rebuilds them exactly from the
ledger. Run Redis with ``maxmemory-policy noeviction`` (or ``volatile-*``): evicting a settled marker would let
a repeated settle count twice.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, RedisError

from ledgergate.domain.admission import (
    Admitted,
    BudgetMode,
    CounterKey,
    CounterLine,
    CounterUnit,
    Decision,
    LineState,
    Refused,
    settle_amount,
)
from ledgergate.domain.ports import Clock, CounterLoader, CounterStoreUnavailable
from ledgergate.domain.windows import LIFETIME
from ledgergate.storage.lua import counter_scripts as lua

DEFAULT_PREFIX = "lg:{lg}:"
_ATTEMPTS = 5  # loads per call before giving up: counters vanishing faster than they load means Redis is unusable


class _Script:
    """A Lua script run with EVALSHA, its command packed in one step.

    redis-py's generic command path (per-argument encoding, observability hooks, response callbacks) costs
    ~25 us of CPU per call; admission and settlement are one call each on every request's path.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        self._head = b"$7\r\nEVALSHA\r\n$40\r\n" + sha.encode() + b"\r\n"

    def command(self, keys: Sequence[str], args: Sequence[str | int]) -> bytes:
        parts = [b"*%d\r\n" % (3 + len(keys) + len(args)), self._head, _bulk(str(len(keys)).encode())]
        parts += [_bulk(str(item).encode()) for item in (*keys, *args)]
        return b"".join(parts)


def _bulk(item: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(item), item)


class CounterStoreError(CounterStoreUnavailable):
    """The counter store keeps losing counters while they are loaded (e.g. memory pressure evicting them)."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _fail_closed(
    method: Callable[Concatenate[RedisCounters, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[RedisCounters, _P], Coroutine[Any, Any, _R]]:
    """Any Redis failure (unreachable, timeout, OOM, read-only replica) leaves as the port's
    ``CounterStoreUnavailable``, which the API answers with 503: no request is admitted without its hold."""

    @functools.wraps(method)
    async def guarded(counters: RedisCounters, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(counters, *args, **kwargs)
        except (RedisError, OSError) as exc:
            raise CounterStoreUnavailable(f"Redis counter store unavailable: {type(exc).__name__}: {exc}") from exc

    return guarded


class RedisCounters:
    """``Counters`` in Redis, shared by every instance that uses the same Redis and prefix."""

    def __init__(
        self,
        redis: Redis,
        clock: Clock,
        *,
        prefix: str = DEFAULT_PREFIX,
        counter_grace_s: int = 3600,
        hold_retention_s: int = 86_400,
        settled_retention_s: int = 86_400,
        owns_client: bool = False,
    ) -> None:
        """``counter_grace_s``: how long a counter outlives its period; ``hold_retention_s``: how long after its
        expiry a hold still knows its counters (a later settle is exact); ``settled_retention_s``: how long a
        repeated settle is recognised."""
        if not redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisCounters needs a client created with decode_responses=True")
        self._redis = redis
        self._clock = clock
        self._prefix = prefix
        self._grace_s = counter_grace_s
        self._hold_retention_s = hold_retention_s
        self._settled_retention_s = settled_retention_s
        self._owns_client = owns_client
        self._zset = f"{prefix}holds"
        self._epoch_key = f"{prefix}epoch"
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._try_hold = _Script(lua.TRY_HOLD)
        self._settle = _Script(lua.SETTLE)
        self._release = _Script(lua.RELEASE)
        self._load = _Script(lua.LOAD)
        self._epoch = _Script(lua.EPOCH)
        self._resync = _Script(lua.RESYNC)
        self._inspect = _Script(lua.INSPECT)
        self._adjust = _Script(lua.ADJUST)
        self._held_count = _Script(lua.HELD_COUNT)

    @classmethod
    def from_url(cls, url: str, clock: Clock, **options: Any) -> RedisCounters:
        client = Redis.from_url(url, decode_responses=True)
        return cls(client, clock, owns_client=True, **options)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

    async def ping(self) -> None:
        """Raise ``CounterStoreUnavailable`` unless Redis answers (readiness: no request is admitted without it)."""
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise CounterStoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    # -- running scripts --------------------------------------------------------------------------------------------

    async def _eval(self, script: _Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """EVALSHA on a pooled connection, with the pool's retry policy for connection errors (every script is
        repeat-safe: a retried hold finds its hold, a retried settle its settled marker); a script unknown to Redis
        (restart, SCRIPT FLUSH) is loaded and run again."""
        command = script.command(keys, args)
        if self._redis.connection is not None:  # a single-connection client: keep to its own locking
            return await self._redis.eval(script.source, len(keys), *keys, *args)
        pool = self._redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            try:
                return await self._run(connection, command)
            except NoScriptError:
                await connection.send_command("SCRIPT", "LOAD", script.source)
                await connection.read_response()
                return await self._run(connection, command)
        finally:
            await pool.release(connection)

    @staticmethod
    async def _run(connection: AbstractConnection, command: bytes) -> Any:
        async def send() -> Any:
            await connection.send_packed_command(command)
            return await connection.read_response()

        async def failed(_error: Exception) -> None:
            await connection.disconnect()  # the next attempt reconnects

        # A connection error disconnects it (redis-py does that on any error mid-command, so no reply is left
        # unread for the next user of the connection).
        return await connection.retry.call_with_retry(send, failed)

    # -- keys -------------------------------------------------------------------------------------------------------

    def counter_name(self, key: CounterKey) -> str:
        # The entity id goes last: it is the only part that may contain ':'.
        return f"{self._prefix}c:{key.entity_type}:{key.window}:{key.period_start_s}:{key.entity_id}"

    def _hold_name(self, hold_id: str) -> str:
        return f"{self._prefix}h:{hold_id}"

    def _settled_name(self, hold_id: str) -> str:
        return f"{self._prefix}s:{hold_id}"

    def _ttl_s(self, line: CounterLine, now_s: float) -> int:
        """Seconds a counter lives, relative to the injected clock (0: forever, for lifetime windows and the
        period-less counters of requests in flight)."""
        if line.key.window == LIFETIME or line.unit is CounterUnit.PARALLEL:
            return 0
        return max(60, math.ceil(line.period_end_s - now_s) + self._grace_s)

    # -- loading from the ledger ------------------------------------------------------------------------------------

    async def _load_missing(self, lines: Sequence[CounterLine], loader: CounterLoader) -> None:
        """Create the absent counters from the ledger (set-if-absent), unless the counters were flushed since the
        ledger was read (the epoch read first has changed): then nothing is stored and the caller's retry reloads.

        Callers in this process share one load per counter; other instances race through set-if-absent.
        """
        unique: dict[str, CounterLine] = {}
        for line in lines:
            unique.setdefault(self.counter_name(line.key), line)
        waits = [self._loading[name] for name in unique if name in self._loading]
        mine = {name: line for name, line in unique.items() if name not in self._loading}
        if mine:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            for name in mine:
                self._loading[name] = future
            try:
                now_s = self._clock.now_s()
                epoch = await self._eval(self._epoch, [self._epoch_key], [uuid.uuid4().hex])  # before the ledger
                sums = await loader([line.key for line in mine.values()], [line.period_end_s for line in mine.values()])
                args: list[str | int] = [str(epoch)]
                for line, spent in zip(mine.values(), sums, strict=True):
                    args += [str(int(spent)), self._ttl_s(line, now_s), uuid.uuid4().hex]
                await self._eval(self._load, [self._epoch_key, *mine], args)  # 0: flushed meanwhile, not stored
                future.set_result(None)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # mark retrieved: the waiters re-raise it themselves
                raise
            finally:
                for name in mine:
                    self._loading.pop(name, None)
        for wait in waits:
            await wait

    async def _resync_lines(self, lines: Sequence[CounterLine], versions: Sequence[str], loader: CounterLoader) -> None:
        sums = await loader([line.key for line in lines], [line.period_end_s for line in lines])
        args: list[str] = []
        for version, spent in zip(versions, sums, strict=True):
            args += [version, str(int(spent)), uuid.uuid4().hex]
        await self._eval(self._resync, [self.counter_name(line.key) for line in lines], args)

    # -- the port ---------------------------------------------------------------------------------------------------

    @_fail_closed
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
        keys = [self._zset, self._hold_name(hold_id), *(self.counter_name(line.key) for line in lines)]
        per_line: list[str] = []
        for line in lines:
            per_line.append("" if line.limit_nanos is None else str(line.limit_nanos))
            per_line.append("" if line.unit is CounterUnit.COST_NANOS else str(line.amount))
        resynced = False
        for _ in range(_ATTEMPTS):
            now_s = self._clock.now_s()
            hold_ttl_s = max(1, math.ceil(expires_at_s - now_s) + self._hold_retention_s)
            reply = await self._eval(
                self._try_hold,
                keys,
                [
                    self._prefix,
                    repr(now_s),
                    hold_id,
                    str(max_cost_nanos),
                    str(min_cost_nanos),
                    mode.value,
                    repr(expires_at_s),
                    hold_ttl_s,
                    # A stale counter is recomputed once; it must never keep a request from being decided.
                    "0" if resynced else "1",
                    *per_line,
                ],
            )
            outcome = int(reply[0])
            if outcome == 1:
                return Admitted(int(reply[1]))
            if outcome == 2:
                return Refused(int(reply[1]), LineState(int(reply[2]), int(reply[3])))
            missing, stale, versions = reply[1], reply[2], reply[3]
            if missing:
                await self._load_missing([lines[int(index)] for index in missing], loader)
            if stale:
                await self._resync_lines([lines[int(index)] for index in stale], versions, loader)
                resynced = True
        raise CounterStoreError(f"counters for hold {hold_id!r} vanished {_ATTEMPTS} times while being loaded")

    @_fail_closed
    async def settle(self, hold_id: str, lines: Sequence[CounterLine], cost_nanos: int) -> None:
        """Turn the hold into spend on every counter that exists; repeat-safe per hold id.

        Ordering: the request charger appends the spend record to the ledger *before* calling settle. So a counter
        that is absent here is not created: whenever it is loaded, the ledger it is loaded from already has this
        record. (An absent counter still gets a ``stale`` marker, because a load that read the ledger *before* the
        append may be about to store its older sum; the marker makes that counter be recomputed once quiet.)
        """
        now_s = self._clock.now_s()
        keys = [self._zset, self._hold_name(hold_id), self._settled_name(hold_id)]
        keys += [self.counter_name(line.key) for line in lines]
        args: list[str | int] = [hold_id, self._settled_retention_s]
        for line in lines:
            args += [str(settle_amount(line, cost_nanos)), self._ttl_s(line, now_s)]
        await self._eval(self._settle, keys, args)

    @_fail_closed
    async def release(self, hold_id: str) -> None:
        await self._eval(self._release, [self._zset, self._hold_name(hold_id)], [hold_id])

    @_fail_closed
    async def adjust(self, line: CounterLine, delta_nanos: int, loader: CounterLoader) -> LineState:
        """Add ``delta_nanos`` to one counter, loading it first if absent.

        Ordering: the caller writes the adjustment record *after* this call (and adjusts back if that fails), so
        no load, here or on another instance, can include it yet: adding the delta is exact whoever loaded.
        """
        name = self.counter_name(line.key)
        for _ in range(_ATTEMPTS):
            reply = await self._eval(self._adjust, [name], [str(delta_nanos)])
            if int(reply[0]) == 1:
                return LineState(int(reply[1]), int(reply[2]))
            await self._load_missing([line], loader)
        raise CounterStoreError(f"counter {name!r} vanished {_ATTEMPTS} times while being loaded")

    @_fail_closed
    async def read(self, lines: Sequence[CounterLine], loader: CounterLoader) -> list[LineState]:
        keys = [self._zset, *(self.counter_name(line.key) for line in lines)]
        resynced = False
        for _ in range(_ATTEMPTS):
            rows = await self._eval(self._inspect, keys, [self._prefix, repr(self._clock.now_s())])
            missing = [line for line, row in zip(lines, rows, strict=True) if row[0] == ""]
            quiet_stale = [
                (line, str(row[3]))
                for line, row in zip(lines, rows, strict=True)
                if row[0] != "" and row[2] != "" and int(row[1]) == 0
            ]
            if not missing and (not quiet_stale or resynced):
                return [LineState(int(row[0]), int(row[1])) for row in rows]
            if missing:
                await self._load_missing(missing, loader)
            elif quiet_stale:
                await self._resync_lines([line for line, _ in quiet_stale], [v for _, v in quiet_stale], loader)
                resynced = True
        raise CounterStoreError(f"counters vanished {_ATTEMPTS} times while being loaded")

    @_fail_closed
    async def held_count(self) -> int:
        while True:
            swept, live = await self._eval(self._held_count, [self._zset], [self._prefix, repr(self._clock.now_s())])
            if int(swept) < lua.SWEEP_BATCH:
                return int(live)
