"""The ledger's group-commit loop, and what it does when the database fails (docs/decisions/0009).

Every ``append`` waits until its record is kept: committed to the database, or (the database down past the retry
budget) appended and fsync'd to this process's spill file (``ledger_spill.py``). The batch is idempotent (request id
unique, first record wins), so a batch whose outcome is unknown (the connection died mid-statement) is simply
written again on a fresh connection, with backoff. While the database is down, batches go straight to the spill
file (no client waits for the retries); the loop probes the database every ``probe_interval_s`` by replaying the
spill files, and takes the normal path again once they are all in the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ledgergate.db_failures import is_database_failure
from ledgergate.domain.ledger import SpendRecord, first_of_each_request
from ledgergate.storage.sql.ledger_spill import LedgerSpill, SpillBacklog, record_to_json

log = logging.getLogger("ledgergate.ledger")

WriteBatch = Callable[[list[SpendRecord]], Awaitable[set[str]]]
_Pending = tuple[SpendRecord, "asyncio.Future[bool]"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long a batch is retried before it is spilled, and how the loop waits for the database to return."""

    backoff_s: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8)  # ~1.5 s of retries, each on a fresh connection
    probe_interval_s: float = 1.0
    max_queued: int = 10_000  # records waiting in memory past which a failing batch is spilled without more retries


DEFAULT_RETRY = RetryPolicy()


class _GaveUp(Exception):
    """Every attempt failed with a database failure (``__cause__``: the last one)."""


class DurableCommits:
    def __init__(
        self,
        write_batch: WriteBatch,
        probe: Callable[[], Awaitable[None]],
        spill: LedgerSpill | None,
        policy: RetryPolicy,
        max_batch: int,
    ):
        self._write_batch = write_batch
        self._probe = probe  # raises a database failure while the database is unreachable
        self._spill = spill
        self._policy = policy
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._degraded = False  # the database failed past the retries: batches are spilled until replay succeeds
        self._next_probe = 0.0
        self._backlog_waiting = False  # spill files may hold records not in the ledger yet
        self._in_flight = 0  # records of the batch being written

    @property
    def pending_count(self) -> int:
        """Records not in the database yet: waiting in memory, or kept in spill files."""
        spilled = self._spill.pending_count if self._spill is not None else 0
        return len(self._pending) + self._in_flight + spilled

    @property
    def degraded(self) -> bool:
        return self._degraded

    async def start(self) -> None:
        if self._task is not None:
            return
        if self._spill is not None:
            await asyncio.to_thread(self._spill.check_usable)  # at start-up, not in the middle of an outage
            # Records spilled by an earlier run (or a process that is gone) are replayed before anything else.
            self._backlog_waiting = await asyncio.to_thread(self._spill.scan)
        self._task = asyncio.create_task(self._loop(), name="ledger-group-commit")

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._spill is not None:
            await asyncio.to_thread(self._spill.close)

    async def append(self, record: SpendRecord) -> bool:
        if self._task is None:
            raise RuntimeError("ledger writer not started")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        self._wakeup.set()
        return await asyncio.shield(future)

    async def _loop(self) -> None:
        while True:
            if self._backlog_waiting and not self._closing:
                timeout = max(0.0, self._next_probe - time.monotonic())
                with contextlib.suppress(TimeoutError):  # time to probe the database again
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
            else:
                await self._wakeup.wait()
            self._wakeup.clear()
            if self._backlog_waiting and time.monotonic() >= self._next_probe and not self._closing:
                try:
                    await self._replay()
                except Exception:  # the loop must outlive any bug: every append waits on it
                    log.exception("ledger: replay of the spill files failed; will retry")
                    self._enter_degraded()
            while self._pending:
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                self._in_flight = len(batch)
                try:
                    await self._commit(batch)
                except Exception as exc:  # a bug here must fail its batch, never stop the loop
                    log.exception("ledger: committing a batch failed")
                    _fail(batch, exc)
                finally:
                    self._in_flight = 0
            if self._closing:
                return

    async def _commit(self, batch: list[_Pending]) -> None:
        records = [record for record, _ in batch]
        if self._degraded and self._spill is not None:
            await self._keep_locally(batch, None)
            return
        try:
            inserted = await self._write_with_retries(records)
        except _GaveUp as gave_up:
            failure = gave_up.__cause__ or gave_up
            if self._spill is None:
                _fail(batch, failure)
                return
            log.error("ledger: database unavailable (%s); spilling records to %s", failure, self._spill.directory)
            self._enter_degraded()
            await self._keep_locally(batch, failure)
            return
        except Exception as exc:
            if len(batch) > 1:  # refused by the database, not a failure of it: one bad record fails alone
                for single in batch:
                    await self._commit([single])
                return
            _fail(batch, exc)
            return
        firsts = first_of_each_request([record.request_id for record, _ in batch])
        for (record, future), first in zip(batch, firsts, strict=True):
            if not future.done():
                future.set_result(first and record.request_id in inserted)

    async def _write_with_retries(self, records: list[SpendRecord]) -> set[str]:
        """The request ids inserted. After an attempt whose outcome is unknown, every record counts as inserted:
        a commit that went through before the connection died must still be charged to the counters (charging a
        true duplicate twice only over-counts until the counters are rebuilt: the safe direction)."""
        last: BaseException | None = None
        for delay_s in (0.0, *self._policy.backoff_s):
            if delay_s:
                await asyncio.sleep(delay_s)
            try:
                inserted = await self._write_batch(records)
            except Exception as exc:
                if not is_database_failure(exc):
                    if last is None:
                        raise
                    raise _GaveUp() from exc  # e.g. a half-open connection's odd error after a failure: keep it
                last = exc
                log.warning("ledger: batch of %d failed (%s: %s); retrying", len(records), type(exc).__name__, exc)
                if self._closing or len(self._pending) >= self._policy.max_queued:
                    break  # shutting down, or too much waiting in memory: keep them locally now
                continue
            return inserted if last is None else inserted | {record.request_id for record in records}
        raise _GaveUp() from last

    async def _keep_locally(self, batch: list[_Pending], failure: BaseException | None) -> None:
        assert self._spill is not None
        try:
            await asyncio.to_thread(self._spill.append, [record for record, _ in batch])
        except Exception as exc:
            # Neither the database nor the local disk keeps them: say so (503), never claim a record we lack.
            log.critical("ledger: cannot spill %d records (%s); database failure: %s", len(batch), exc, failure)
            _fail(batch, failure or exc)
            return
        self._backlog_waiting = True
        # Replay writes the first of each request id (the ledger's rule): that append is the one charged.
        firsts = first_of_each_request([record.request_id for record, _ in batch])
        for (_, future), first in zip(batch, firsts, strict=True):
            if not future.done():
                future.set_result(first)

    def _enter_degraded(self) -> None:
        self._degraded = True
        self._backlog_waiting = True
        self._next_probe = time.monotonic() + self._policy.probe_interval_s

    async def _replay(self) -> None:
        """Write every spill file (this process's and those of processes that are gone) into the ledger."""
        assert self._spill is not None
        spill = self._spill
        try:
            await self._probe()  # a cheap check first: no file is touched while the database is still down
        except Exception as exc:
            if not is_database_failure(exc):
                raise
            log.warning("ledger: database still unavailable (%s: %s)", type(exc).__name__, exc)
            self._enter_degraded()
            return
        backlogs = await asyncio.to_thread(_release_and_adopt, spill)
        for index, backlog in enumerate(backlogs):
            try:
                await self._replay_one(backlog)
            except Exception as exc:
                for rest in backlogs[index:]:
                    await asyncio.to_thread(spill.give_back, rest)
                if not is_database_failure(exc):
                    log.exception("ledger: replaying %s failed; will retry", backlog.path)
                else:
                    log.warning("ledger: database unavailable again (%s: %s)", type(exc).__name__, exc)
                self._enter_degraded()
                return
            await asyncio.to_thread(spill.done, backlog)
            log.warning("ledger: %d spilled records from %s are in the ledger", backlog.lines_read, backlog.path)
        self._degraded = False
        self._backlog_waiting = await asyncio.to_thread(_has_files, spill)
        self._next_probe = time.monotonic() + self._policy.probe_interval_s

    async def _replay_one(self, backlog: SpillBacklog) -> None:
        assert self._spill is not None
        while chunk := await asyncio.to_thread(self._spill.read_batch, backlog, self._max_batch):
            try:
                await self._write_batch(chunk)
            except Exception as exc:
                if is_database_failure(exc):
                    raise
                for record in chunk:  # refused by the database: find the record at fault, keep the others flowing
                    try:
                        await self._write_batch([record])
                    except Exception as single:
                        if is_database_failure(single):
                            raise
                        # Kept for the operator, not retried forever: one bad line must not stop the ledger.
                        log.error(
                            "ledger: spilled record %s refused (%s); kept in .rejected", record.request_id, single
                        )
                        await asyncio.to_thread(self._spill.reject, backlog.path, [record_to_json(record)])


def _release_and_adopt(spill: LedgerSpill) -> list[SpillBacklog]:
    spill.release_own()
    return spill.adopt()


def _has_files(spill: LedgerSpill) -> bool:
    """Whether some spill file may wait (one locked by a live process counts: it is replayed once released)."""
    return spill.own_count > 0 or (spill.directory.is_dir() and any(spill.directory.glob("ledger-spill-*.jsonl")))


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():  # the waiter learns of the failure; nothing is silently dropped
            future.set_exception(exc)
            future.exception()
