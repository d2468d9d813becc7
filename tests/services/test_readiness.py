"""/health/readiness as a service (issue 13 item 3): it asks store probes (ports) instead of testing
``isinstance(counters, RedisCounters)`` in the HTTP layer. Plain probe functions here, no sockets."""

from __future__ import annotations

import asyncio

import pytest

from ledgergate.domain.ports import CounterStoreUnavailable
from ledgergate.services import readiness
from ledgergate.services.readiness import Readiness


class Probe:
    def __init__(self, failure: BaseException | None = None, delay_s: float = 0.0) -> None:
        self.failure = failure
        self.delay_s = delay_s
        self.calls = 0

    async def ping(self) -> None:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.failure is not None:
            raise self.failure


async def test_a_database_that_does_not_answer_fails_the_probe_and_reports_the_spilled_records() -> None:
    database = Probe(OSError("connection refused"))
    redis = Probe()
    report = await Readiness(version="1", database=database, ledger_pending=lambda: 7, redis=redis).report()
    assert not report.healthy
    assert report.body == {"status": "unhealthy", "db": "error: OSError", "ledger_pending": 7}
    assert redis.calls == 0  # the database decides; Redis is not asked


async def test_redis_down_is_reported_but_does_not_take_the_instance_out_of_rotation() -> None:
    ready = Readiness(
        version="1",
        database=Probe(),
        ledger_pending=lambda: 0,
        redis=Probe(CounterStoreUnavailable("down")),
        counters_admitting=lambda: "database",
    )
    report = await ready.report()
    assert report.healthy
    assert report.body == {
        "status": "healthy",
        "db": "connected",
        "version": "1",
        "ledger_pending": 0,
        "redis": "error: CounterStoreUnavailable",
        "counters": "database",
    }


async def test_a_redis_that_hangs_is_reported_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hanging Redis must not hang the probe (load balancers give up and pull every instance)."""
    monkeypatch.setattr(readiness, "READINESS_TIMEOUT_S", 0.05)
    ready = Readiness(version="1", database=Probe(), ledger_pending=lambda: 0, redis=Probe(delay_s=5))
    report = await asyncio.wait_for(ready.report(), 2)
    assert report.healthy and report.body["redis"] == "error: TimeoutError"


async def test_without_redis_the_report_names_neither_redis_nor_counters() -> None:
    report = await Readiness(version="2", database=Probe(), ledger_pending=lambda: 0).report()
    assert report.body == {"status": "healthy", "db": "connected", "version": "2", "ledger_pending": 0}
