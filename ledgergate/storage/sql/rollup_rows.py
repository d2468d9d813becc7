"""What one spend record adds to the hourly and daily rollups, and the local day of an instant, cheaply.

``ledger_rows.py`` turns them into the rollup rows of a batch, which both ledger writers (SQLite, PostgreSQL) add for
the records a transaction actually inserted, hourly into ``spend_rollups`` and daily (in the gateway's timezone)
into ``spend_daily_rollups``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ledgergate.domain.durations import parse_duration, period_of
from ledgergate.domain.ledger import SpendRecord
from ledgergate.storage.sql.tables import ROLLUP_HOUR_S, ROLLUP_RECORD_ID, ROLLUP_RECORD_TYPE

# (entity_type, entity_id, model, hour_start_s or day_start_s) -> [cost_nanos, requests, prompt_tokens,
# completion_tokens]
RollupKey = tuple[str, str, str, int]
RollupAdds = dict[RollupKey, list[int]]

ONE_DAY = parse_duration("1d")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CACHED_DAYS = 4


def rollup_adds(record: SpendRecord, bucket_start_s: int) -> RollupAdds:
    """One record's adds to the bucket (hour or local day) starting at ``bucket_start_s``: a row per charge
    target (each once, as its charges are unique per target) and one for the whole ledger."""
    sums = (record.cost_nanos, 1, record.prompt_tokens, record.completion_tokens)
    targets = {(target.type.value, target.id) for target in record.targets}
    targets.add((ROLLUP_RECORD_TYPE, ROLLUP_RECORD_ID))
    return {(entity_type, entity_id, record.model, bucket_start_s): list(sums) for entity_type, entity_id in targets}


def hour_start_s(charged_at_us: int) -> int:
    return charged_at_us // 1_000_000 // ROLLUP_HOUR_S * ROLLUP_HOUR_S


def local_day_us(instant_us: int, tz: ZoneInfo) -> tuple[int, int]:
    """``[start, end)`` in epoch microseconds of the local day of ``tz`` holding ``instant_us``: the period of a
    ``1d`` budget window, hence the report's day (DST days last 23 or 25 hours)."""
    start, end = period_of(_EPOCH + timedelta(microseconds=instant_us), ONE_DAY, tz)
    return (start - _EPOCH) // timedelta(microseconds=1), (end - _EPOCH) // timedelta(microseconds=1)


class LocalDays:
    """The local day start of a charge instant, with the calendar arithmetic done once per day: records arrive
    in about time order, so the last few days' bounds answer nearly every lookup (late records of yesterday
    included)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._days: list[tuple[int, int]] = []  # [start_us, end_us), most recently computed last

    def day_start_s(self, instant_us: int) -> int:
        for start_us, end_us in reversed(self._days):
            if start_us <= instant_us < end_us:
                return start_us // 1_000_000
        start_us, end_us = local_day_us(instant_us, self._tz)
        self._days = [*self._days[-(_CACHED_DAYS - 1) :], (start_us, end_us)]
        return start_us // 1_000_000
