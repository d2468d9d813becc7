"""What ``/health/readiness`` reports: the database (fails the probe), the ledger's unwritten records, Redis and
where admission runs now (reported, never failed on: see docs/deployment.md, "Health checks")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledgergate.domain.ports import CounterStoreUnavailable, StoreProbe

READINESS_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ReadinessReport:
    healthy: bool
    body: dict[str, Any]


class Readiness:
    def __init__(
        self,
        *,
        version: str,
        database: StoreProbe,
        ledger_pending: Callable[[], int],
        redis: StoreProbe | None = None,
        counters_admitting: Callable[[], str] | None = None,
    ) -> None:
        """``redis``: only when Redis is configured; ``counters_admitting``: only with a database fallback."""
        self._version = version
        self._database = database
        self._ledger_pending = ledger_pending
        self._redis = redis
        self._counters_admitting = counters_admitting

    async def report(self) -> ReadinessReport:
        try:
            await self._database.ping()
        except Exception as exc:
            # ledger_pending: records served while the database was down, kept in the spill file until it returns.
            failed = {"status": "unhealthy", "db": _error(exc), "ledger_pending": self._ledger_pending()}
            return ReadinessReport(False, failed)
        body: dict[str, Any] = {
            "status": "healthy",
            "db": "connected",
            "version": self._version,
            "ledger_pending": self._ledger_pending(),
        }
        if self._redis is not None:
            # Reported, not failed on: with Redis down every instance answers LLM requests with 503 (fail closed)
            # or admits through PostgreSQL (counter_fallback: database), and taking them all out of rotation would
            # not help.
            try:
                await asyncio.wait_for(self._redis.ping(), READINESS_TIMEOUT_S)
                body["redis"] = "connected"
            except (CounterStoreUnavailable, TimeoutError) as exc:
                body["redis"] = _error(exc)
        if self._counters_admitting is not None:
            body["counters"] = self._counters_admitting()  # where admission runs now: redis or database
        return ReadinessReport(True, body)


def _error(exc: BaseException) -> str:
    return f"error: {type(exc).__name__}"
