"""Exactly one settlement per admitted request, in a task of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ledgergate.domain.ledger import RequestStatus, SpendRecord
from ledgergate.domain.pricing import Usage

RecordWritten = Callable[[SpendRecord], None]
ScheduleSettle = Callable[[Usage | None, RequestStatus, RecordWritten], "asyncio.Task[Any]"]


class Settlement:
    """Exactly one settlement per admitted request, as a task of its own so a cancelled request cannot cut it in
    half (ledger written, counters not). The response waits for the durable record only: turning the hold into
    spend in the counters continues in that task (with Redis, one round trip less before the client's answer;
    until then the counter still holds the request's maximum cost, never less than it spent).

    The first ``start`` (or ``run``) decides the usage and status; later calls return the same result."""

    def __init__(self, schedule: ScheduleSettle) -> None:
        self._schedule = schedule
        self._recorded: asyncio.Future[SpendRecord] | None = None

    @property
    def started(self) -> bool:
        return self._recorded is not None

    def start(self, usage: Usage | None, status: RequestStatus) -> asyncio.Future[SpendRecord]:
        if self._recorded is None:
            recorded: asyncio.Future[SpendRecord] = asyncio.get_running_loop().create_future()
            self._recorded = recorded

            def record_written(record: SpendRecord) -> None:
                if not recorded.done():
                    recorded.set_result(record)

            def settled(task: asyncio.Task[Any]) -> None:
                if recorded.done():
                    return
                if task.cancelled():
                    recorded.cancel()
                elif (exc := task.exception()) is not None:
                    recorded.set_exception(exc)
                    recorded.exception()  # retrieved: a request that no longer waits must not warn about it
                else:
                    recorded.set_result(task.result())

            self._schedule(usage, status, record_written).add_done_callback(settled)
        return self._recorded

    async def run(self, usage: Usage | None, status: RequestStatus) -> SpendRecord:
        return await asyncio.shield(self.start(usage, status))
