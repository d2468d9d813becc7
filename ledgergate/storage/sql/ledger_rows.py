"""The rows one group commit writes, shared by both ledger writers (SQLite, PostgreSQL).

``ledger_batch`` turns spend records into a ``LedgerBatch``: the first record of each request id only (the domain's
``first_of_each_request``), its charges and its hourly and daily rollup additions, each row led by its request id.
A writer then answers one question, in one transaction: which of these distinct request ids were not in the ledger
yet; it inserts those records and adds only their charges and rollups. Columns come from the tables (``tables.py``),
so the writers cannot drift from the schema or from each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ledgergate.domain.ledger import SpendRecord, first_of_each_request
from ledgergate.storage.sql.rollup_rows import rollup_adds
from ledgergate.storage.sql.tables import ROLLUP_SUMS, spend_charges, spend_records

RECORD_COLUMNS: tuple[str, ...] = tuple(column.name for column in spend_records.columns)
CHARGE_COLUMNS: tuple[str, ...] = tuple(column.name for column in spend_charges.columns)
# A rollup addition: (request_id, entity_type, entity_id, model, hour or local day start_s, *ROLLUP_SUMS).
ROLLUP_ADD_COLUMNS: tuple[str, ...] = ("request_id", "entity_type", "entity_id", "model", "start_s", *ROLLUP_SUMS)

RecordRow = tuple[Any, ...]  # values in RECORD_COLUMNS order
ChargeRow = tuple[str, str, str, int, int]  # CHARGE_COLUMNS
RollupAddRow = tuple[str, str, str, str, int, int, int, int, int]  # ROLLUP_ADD_COLUMNS
# (entity_type, entity_id, model, start_s) -> the ROLLUP_SUMS of the records written
RollupSums = dict[tuple[str, str, str, int], list[int]]


@dataclass(frozen=True, slots=True)
class LedgerBatch:
    """One group commit's rows. ``records`` holds each request id once; the other rows are led by the request id of
    the record they belong to, and are written only if that record is."""

    records: list[RecordRow]
    charges: list[ChargeRow]
    hourly: list[RollupAddRow]
    daily: list[RollupAddRow]
    timezone: str  # the local days of ``daily``

    def __post_init__(self) -> None:
        # The writers rely on it (SQLite's plain INSERT, PostgreSQL's JOIN on the inserted ids): build batches with
        # ``ledger_batch``, which keeps the first record of each request id.
        if len({row[0] for row in self.records}) != len(self.records):
            raise ValueError("a ledger batch holds each request id once (ledger_batch keeps the first record)")

    @property
    def request_ids(self) -> list[str]:
        return [row[0] for row in self.records]


class LedgerBatchWriter(Protocol):
    """A dialect's writer: ``write`` inserts, atomically, the batch's records not in the ledger yet with their
    charges and rollup additions, and returns their request ids (a record already there wins, adds nothing)."""

    async def write(self, batch: LedgerBatch) -> set[str]: ...

    async def close(self) -> None: ...


def ledger_batch(
    records: Sequence[SpendRecord], hour_of: Callable[[int], int], day_of: Callable[[int], int | None], timezone: str
) -> LedgerBatch:
    """The rows of ``records`` (the first of each request id): ``hour_of`` / ``day_of`` give the hour and local day
    start of a charge instant (``day_of`` None: no daily rows are kept)."""
    rows: list[RecordRow] = []
    charges: list[ChargeRow] = []
    hourly: list[RollupAddRow] = []
    daily: list[RollupAddRow] = []
    for record, first in zip(records, first_of_each_request([r.request_id for r in records]), strict=True):
        if not first:
            continue
        rows.append(record_values(record))
        charges.extend(charge_rows(record))
        hourly.extend(_rollup_add_rows(record, hour_of(record.charged_at_us)))
        day_start_s = day_of(record.charged_at_us)
        if day_start_s is not None:
            daily.extend(_rollup_add_rows(record, day_start_s))
    return LedgerBatch(rows, charges, hourly, daily, timezone)


def record_values(record: SpendRecord) -> RecordRow:
    """The record's values in RECORD_COLUMNS order (the table's; a test pins the two together)."""
    return (
        record.request_id,
        record.key_id,
        record.user_id,
        record.team_id,
        record.organization_id,
        record.customer_id,
        orjson.dumps(list(record.tags)).decode(),
        record.model,
        record.deployment_id,
        record.route,
        record.prompt_tokens,
        record.completion_tokens,
        record.cost_nanos,
        record.status.value,
        record.charged_at_us,
        record.ended_at_us,
    )


def record_row(record: SpendRecord) -> dict[str, Any]:
    return dict(zip(RECORD_COLUMNS, record_values(record), strict=True))


def charge_rows(record: SpendRecord) -> list[ChargeRow]:
    # Each target once: the charges table holds one row per target (its primary key).
    targets = dict.fromkeys((target.type.value, target.id) for target in record.targets)
    return [
        (record.request_id, entity_type, entity_id, record.cost_nanos, record.charged_at_us)
        for entity_type, entity_id in targets
    ]


def _rollup_add_rows(record: SpendRecord, start_s: int) -> list[RollupAddRow]:
    return [
        (record.request_id, entity_type, entity_id, model, start_s, cost_nanos, requests, prompt, completion)
        for (entity_type, entity_id, model, start_s), (cost_nanos, requests, prompt, completion) in rollup_adds(
            record, start_s
        ).items()
    ]


def summed_rollups(rows: Sequence[RollupAddRow], written: set[str]) -> list[tuple[Any, ...]]:
    """The additions of the records ``written``, one row per rollup key (entity_type, entity_id, model, start_s,
    *sums), sorted: concurrent writers (and the daily backfill) take the rows' locks in one order, no deadlock."""
    sums: RollupSums = {}
    for request_id, entity_type, entity_id, model, start_s, *values in rows:
        if request_id in written:
            total = sums.setdefault((entity_type, entity_id, model, start_s), [0, 0, 0, 0])
            for index, value in enumerate(values):
                total[index] += value
    return [(*key, *values) for key, values in sorted(sums.items())]
