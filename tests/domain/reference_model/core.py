"""One gateway instance's admission and ledger services over a real SQLite file, with a clock the test moves.

``restart`` drops the engine, the entity cache, the counters and the ledger writer and builds them again over the
same file: what a process restart looks like to the ledger. The direct SQL sums here are written independently of
``SqlLedger`` so the model tests compare the counters against the database itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.deployments import Deployment
from ledgergate.domain.admission import BudgetMode
from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.pricing import TokenPrices
from ledgergate.domain.windows import FAR_FUTURE_S, LIFETIME_PERIOD_START_S, PeriodClock, Window
from ledgergate.services.directory import Directory
from ledgergate.services.request_charging import LlmCall, RequestCharger
from ledgergate.services.spend_reset import SpendResets
from ledgergate.storage.memory_counters import MemoryCounters
from ledgergate.storage.sql.engine import create_engine, upgrade_schema
from ledgergate.storage.sql.entities import SqlEntityStore
from ledgergate.storage.sql.ledger import SqlLedger
from tests.builders import MonotonicClock, window
from tests.builders import entity as key_entity

__all__ = ["MonotonicClock", "window"]  # tests/builders.py's, as the model tests import them from here

# 2026-01-01T00:00:00Z: every model test starts on a day, hour and minute boundary.
EPOCH_START_S = 1_767_225_600.0
INPUT_NANOS_PER_MTOK = 1_500_000  # 1.5 nanos per token: costs round up, so the rounding is exercised
OUTPUT_NANOS_PER_MTOK = 4_500_000
MAX_OUTPUT_TOKENS = 1_000  # the hold's output cap when a request sets no max_tokens, and the bound of any cap
PRICES = TokenPrices(input_nanos_per_mtok=INPUT_NANOS_PER_MTOK, output_nanos_per_mtok=OUTPUT_NANOS_PER_MTOK)
DEPLOYMENT = Deployment(
    model_name="model-test",
    provider="openai",
    upstream_model="model-test",
    api_base="http://127.0.0.1:9",  # never called: these tests stop at the charging service
    api_key=None,
    prices=PRICES,
    max_output_tokens=MAX_OUTPUT_TOKENS,
    deployment_id="model-test#0",
)
FIXED_PERIOD_S = {"s": 1, "m": 60, "h": 3600}


def expected_period(window_: Window, now_s: float) -> tuple[int, int]:
    """The period a request admitted at ``now_s`` is charged in: the one holding its recorded microsecond."""
    if window_.duration is None:
        return LIFETIME_PERIOD_START_S, FAR_FUTURE_S
    length_s = window_.duration.count * FIXED_PERIOD_S[window_.duration.unit]
    second = math.floor(now_s * 1_000_000) // 1_000_000
    start_s = second - second % length_s  # UTC: fixed periods tile the epoch as they tile each day
    return start_s, start_s + length_s


def cost_of(prompt_tokens: int, completion_tokens: int) -> int:
    """The reference price: exact products, rounded up to a whole nano once."""
    units = prompt_tokens * INPUT_NANOS_PER_MTOK + completion_tokens * OUTPUT_NANOS_PER_MTOK
    return -(-units // 1_000_000)


def llm_call(request_id: str, input_tokens: int, max_tokens: int | None, n: int = 1) -> LlmCall:
    return LlmCall(
        request_id=request_id,
        route="/v1/chat/completions",
        model=DEPLOYMENT.model_name,
        deployment=DEPLOYMENT,
        input_tokens_bound=input_tokens,
        requested_max_tokens=max_tokens,
        n=n,
    )


class Core:
    """The services ``build_container`` wires for the embedded setup, minus HTTP and the upstream."""

    def __init__(self, db_path: Path, clock: MonotonicClock, mode: BudgetMode, hold_ttl_s: float) -> None:
        self._url = f"sqlite+aiosqlite:///{db_path}"
        self.clock = clock
        self.mode = mode
        self.hold_ttl_s = hold_ttl_s
        self.engine: AsyncEngine
        self.directory: Directory
        self.ledger: SqlLedger
        self.counters: MemoryCounters
        self.charger: RequestCharger
        self.resets: SpendResets
        self._open = False

    async def open(self) -> None:
        self.engine = create_engine(self._url)
        await upgrade_schema(self.engine)
        await self._build()

    async def _build(self) -> None:
        self.directory = Directory(SqlEntityStore(self.engine))
        self.ledger = SqlLedger(self.engine)
        await self.ledger.start()
        self._open = True
        self.counters = MemoryCounters(self.clock)
        self.charger = RequestCharger(
            directory=self.directory,
            counters=self.counters,
            ledger=self.ledger,
            clock=self.clock,
            periods=PeriodClock(ZoneInfo("UTC")),
            mode=self.mode,
            hold_ttl_s=self.hold_ttl_s,
            allow_client_tags=False,
        )
        self.resets = SpendResets(self.directory, self.charger, self.counters, self.ledger, self.clock)

    async def restart(self) -> None:
        """Forget everything held in memory; only the SQLite file survives."""
        await self.close()
        self.engine = create_engine(self._url)
        await self._build()

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self.ledger.close()
            await self.engine.dispose()

    async def create_key(self, key_id: str, primary: Window | None, *limits: Window) -> Entity:
        now_s = self.clock.now_s()
        entity = key_entity(EntityType.KEY, key_id, primary, *limits, created_at_s=now_s, updated_at_s=now_s)
        return await self.directory.create(entity)

    async def key(self, key_id: str) -> Entity:
        entity = await self.directory.get(EntityType.KEY, key_id)
        assert entity is not None, f"key {key_id} vanished from the database"
        return entity

    async def db_snapshot(self) -> DbSnapshot:
        """The ledger tables read straight with SQL, in one connection (the model checks run after every step)."""
        async with self.engine.connect() as connection:
            records = (await connection.execute(text("SELECT request_id, cost_nanos FROM spend_records"))).all()
            charges = (
                await connection.execute(
                    text("SELECT request_id, entity_type, entity_id, cost_nanos, charged_at_us FROM spend_charges")
                )
            ).all()
            adjustments = (
                await connection.execute(
                    text('SELECT entity_type, entity_id, "window", period_start_s, delta_nanos FROM spend_adjustments')
                )
            ).all()
        return DbSnapshot(
            records={row[0]: int(row[1]) for row in records},
            charges=[(row[0], row[1], row[2], int(row[3]), int(row[4])) for row in charges],
            adjustments=[(row[0], row[1], row[2], int(row[3]), int(row[4])) for row in adjustments],
        )


@dataclass(frozen=True, slots=True)
class DbSnapshot:
    records: dict[str, int]  # request id -> cost
    charges: list[tuple[str, str, str, int, int]]  # request id, entity type, entity id, cost, charged_at_us
    adjustments: list[tuple[str, str, str, int, int]]  # entity type, entity id, window, period start, delta

    def window_spend(self, key_id: str, window_key: str, start_s: int, end_s: int) -> int:
        """Charges of the key in ``[start, end)`` plus the adjustments of that window's period."""
        start_us, end_us = start_s * 1_000_000, end_s * 1_000_000
        charged = sum(
            cost
            for _, entity_type, entity_id, cost, charged_at_us in self.charges
            if entity_type == "key" and entity_id == key_id and start_us <= charged_at_us < end_us
        )
        adjusted = sum(
            delta
            for entity_type, entity_id, window, period_start_s, delta in self.adjustments
            if entity_type == "key" and entity_id == key_id and window == window_key and period_start_s == start_s
        )
        return charged + adjusted

    def totals(self) -> tuple[int, int]:
        """(number of records, sum of their costs); each record must have one charge row of the same cost."""
        charged = {request_id: cost for request_id, _, _, cost, _ in self.charges}
        assert charged == self.records, "spend_charges disagree with spend_records (one key target each)"
        return len(self.records), sum(self.records.values())
