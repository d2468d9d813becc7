"""Settle once: whatever calls race to settle a request (its end, a failure, a cancellation), one settlement runs
and every caller sees its record."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import RequestStatus, SpendRecord
from ledgergate.domain.pricing import Usage
from ledgergate.services.request_ids import new_request_id
from ledgergate.services.settlement import RecordWritten, Settlement
from tests.builders import spend_record


def _record(status: RequestStatus) -> SpendRecord:
    return spend_record(
        "r1",
        cost_nanos=0,
        charged_at_us=0,
        targets=(EntityRef(EntityType.KEY, "k1"),),
        model="m",
        deployment_id="m#0",
        route="chat.completions",
        prompt_tokens=0,
        completion_tokens=0,
        status=status,
        ended_at_us=0,
    )


class _Scheduler:
    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[tuple[Usage | None, RequestStatus]] = []
        self._fail = fail

    def __call__(self, usage: Usage | None, status: RequestStatus, recorded: RecordWritten) -> asyncio.Task[Any]:
        self.calls.append((usage, status))

        async def settle() -> SpendRecord:
            await asyncio.sleep(0)
            if self._fail:
                raise RuntimeError("ledger down")
            record = _record(status)
            recorded(record)
            return record

        return asyncio.ensure_future(settle())


async def test_a_second_settlement_of_the_same_request_is_a_no_op_returning_the_first() -> None:
    schedule = _Scheduler()
    settlement = Settlement(schedule)
    first = await settlement.run(Usage(1, 2), RequestStatus.SUCCESS)
    again = await settlement.run(None, RequestStatus.CANCELLED)  # the ``finally`` after a normal end
    assert first is again and first.status is RequestStatus.SUCCESS
    assert schedule.calls == [(Usage(1, 2), RequestStatus.SUCCESS)]


async def test_racing_settlements_schedule_one_task() -> None:
    schedule = _Scheduler()
    settlement = Settlement(schedule)
    records = await asyncio.gather(
        settlement.run(None, RequestStatus.ERROR), settlement.run(None, RequestStatus.CANCELLED)
    )
    assert records[0] is records[1] and len(schedule.calls) == 1


async def test_a_failed_settlement_reaches_the_waiting_request() -> None:
    settlement = Settlement(_Scheduler(fail=True))
    with pytest.raises(RuntimeError, match="ledger down"):
        await settlement.run(None, RequestStatus.SUCCESS)


async def test_a_cancelled_waiter_does_not_cancel_the_settlement() -> None:
    """Attack: the request is cancelled while it waits for the durable record; the charge still completes."""
    schedule = _Scheduler()
    settlement = Settlement(schedule)
    waiter = asyncio.ensure_future(settlement.run(None, RequestStatus.SUCCESS))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    record = await settlement.start(None, RequestStatus.CANCELLED)
    assert record.status is RequestStatus.SUCCESS and len(schedule.calls) == 1


def test_request_ids_are_unique_32_hex_digits_ordered_by_time() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(request_id) == 32 and int(request_id, 16) >= 0 for request_id in ids)
    assert [request_id[:12] for request_id in ids] == sorted(request_id[:12] for request_id in ids)
