"""Fixtures of the model tests: gateway cores over SQLite files in ``tmp_path``, closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ledgergate.domain.admission import BudgetMode
from tests.domain.reference_model.core import EPOCH_START_S, Core, MonotonicClock

CoreFactory = Callable[..., Awaitable[Core]]


@pytest.fixture
async def make_core(tmp_path: Path) -> AsyncIterator[CoreFactory]:
    """``await make_core(mode, hold_ttl_s=...)``: an open core on a fresh database file, with its own clock."""
    cores: list[Core] = []

    async def make(mode: BudgetMode = BudgetMode.STANDARD, *, hold_ttl_s: float = 600.0) -> Core:
        core = Core(tmp_path / f"ledger-{len(cores)}.db", MonotonicClock(EPOCH_START_S), mode, hold_ttl_s)
        cores.append(core)
        await core.open()
        return core

    yield make
    for core in cores:
        await core.close()
