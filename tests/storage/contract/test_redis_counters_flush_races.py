"""Regression tests for the stale-load race: a ledger snapshot taken before a Redis flush must never be stored
into (LOAD) or replace (RESYNC) a counter recreated after it. The interleaving is forced, not left to chance."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ledgergate.domain.admission import Admitted, BudgetMode, CounterKey, LineState
from tests.storage.contract.backends import T0_S, LedgerView, RedisBackend, line

FAR_S = T0_S + 10_000


class GatedLedger:
    """A loader over ``ledger`` whose first call takes its snapshot, signals ``snapshot_taken`` and then waits for
    ``release`` before answering: the test runs a flush between the ledger read and the script that uses it."""

    def __init__(self, ledger: LedgerView) -> None:
        self.ledger = ledger
        self.snapshot_taken = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    async def __call__(self, keys: Sequence[CounterKey], period_ends_s: Sequence[int]) -> list[int]:
        self.calls += 1
        snapshot = await self.ledger(keys, period_ends_s)
        if self.calls == 1:
            self.snapshot_taken.set()
            await self.release.wait()
        return snapshot


async def test_stale_load_race_a_load_whose_ledger_read_precedes_a_flush_is_not_stored(
    redis_backend: RedisBackend,
) -> None:
    """Bug (flaky flush_under_load): a loader read the ledger, the counters were flushed, and its set-if-absent
    LOAD then stored the pre-flush snapshot into the recreated counter, missing forever the settles in between
    (counter far below its ledger sum, not marked stale). Now the epoch read before the ledger has changed, the
    LOAD is refused and the caller reloads from the ledger."""
    ledger = LedgerView()
    target = line("k", 10_000)
    a, b = redis_backend.instance(), redis_backend.instance()
    ledger.spent[target.key] = 1_000
    gated = GatedLedger(ledger)
    slow_read = asyncio.ensure_future(b.read([target], gated))
    await gated.snapshot_taken.wait()  # b's snapshot: 1_000
    assert await a.try_hold("r1", [target], 500, 0, BudgetMode.STANDARD, FAR_S, ledger) == Admitted(500)
    ledger.spent[target.key] += 400
    await a.settle("r1", [target], 400)  # exact on a's incarnation: 1_400, not stale
    await redis_backend.lose_cache()
    gated.release.set()  # b's LOAD now runs against the flushed, absent counter
    assert await slow_read == [LineState(1_400, 0)]
    assert gated.calls == 2  # refused once, reloaded once
    assert await a.read([target], ledger) == [LineState(1_400, 0)]


async def test_stale_load_race_a_resync_whose_ledger_read_precedes_a_flush_is_not_applied(
    redis_backend: RedisBackend,
) -> None:
    """Same race in RESYNC: it compared only ``ver``, which restarts when a counter is recreated, so a snapshot of
    the old incarnation replaced the new one's spend when their versions happened to match. Now the version
    includes the incarnation token: the old snapshot is refused and the counter ends equal to the ledger."""
    ledger = LedgerView()
    target = line("k", 10_000)
    a, b = redis_backend.instance(), redis_backend.instance()
    ledger.spent[target.key] = 100
    assert await a.read([target], ledger) == [LineState(100, 0)]
    ledger.spent[target.key] += 50
    await a.settle("u1", [target], 50)  # no hold record: 150, stale, quiet
    gated = GatedLedger(ledger)
    slow_read = asyncio.ensure_future(b.read([target], gated))
    await gated.snapshot_taken.wait()  # b's resync snapshot: 150
    ledger.spent[target.key] += 30
    await redis_backend.lose_cache()
    assert await a.read([target], ledger) == [LineState(180, 0)]
    ledger.spent[target.key] += 20
    await a.settle("u2", [target], 20)  # 200, stale again, same ver as the incarnation b saw
    gated.release.set()
    assert (await slow_read)[0].spent_nanos == 200  # never the pre-flush 150
    assert await b.read([target], ledger) == [LineState(200, 0)]
    assert await a.read([target], ledger) == [LineState(200, 0)]
