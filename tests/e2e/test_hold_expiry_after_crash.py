"""An instance killed between a request's ledger append and its counter settle: what its expired hold leaves.

Deterministic form of the race the SIGKILL test in test_two_instances.py hits now and then.
"""

from __future__ import annotations

from ledgergate.domain.admission import Admitted, BudgetMode, LineState
from tests.storage.contract.backends import T0_S, LedgerView, ManualClock, RedisBackend, line
from tests.storage.contract.services import check_redis, unique_prefix


async def test_redis_counters_expired_unsettled_hold_is_recounted_from_the_ledger() -> None:
    """A hold whose request reached the ledger but was never settled (its instance died in between) expires;
    the counter must then come back to the ledger's value, not lose the record's cost (an undercount would let
    the window overshoot by it)."""
    await check_redis()
    clock = ManualClock()
    backend = RedisBackend(clock, unique_prefix())
    try:
        counters = backend.instance()
        ledger = LedgerView()
        target = line("crashed", 1_000_000)
        ledger.spent[target.key] = 2_000
        admitted = await counters.try_hold("r1", [target], 500, 1, BudgetMode.STANDARD, T0_S + 10, ledger)
        assert admitted == Admitted(500)
        ledger.spent[target.key] += 500  # appended; the instance is killed before it settles
        clock.now = T0_S + 11
        assert await counters.read([target], ledger) == [LineState(2_500, 0)]
    finally:
        await backend.aclose()
