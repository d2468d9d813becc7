"""Reads as a service (issue 13 item 5): ``SpendReader`` takes typed filters and decides dates and sums; storage
returns rows. Real SQLite through the composition root, no HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledgergate.container import Container
from ledgergate.domain.charging import EntityType
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.spend_filters import LogFilter, ReportGroup
from ledgergate.services.admin_schemas import KeyGenerateIn, ResetSpendIn
from tests.services.edge_services import MASTER_KEY, embedded_services, principal_of


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Container]:
    async with embedded_services(tmp_path, timezone="Europe/Berlin") as container:
        yield container


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("1970-01-01", "9999-12-30", "end_date"),  # 3 million days: refused before any day is built or queried
        ("2026-03-02", "2026-03-01", "start_date"),
        ("2026-02-30", None, "start_date"),
        ("0001-01-01", "2026-01-02", "start_date"),
        (None, "9999-12-31", "end_date"),
    ],
)
async def test_a_report_range_that_breaks_a_rule_is_refused_naming_the_field(
    services: Container, start: str | None, end: str | None, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await services.spend_reader.report(ReportGroup.KEY, LogFilter(), start, end)
    assert refused.value.field == field


@pytest.mark.parametrize("bound", ["yesterday", "2026-13-01T00:00", "9999-12-31"])
async def test_a_log_bound_that_is_no_date_or_instant_is_refused_naming_the_field(
    services: Container, bound: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await services.spend_reader.logs(LogFilter(), start=bound)
    assert refused.value.field == "start_date"


async def test_an_empty_report_covers_the_default_30_local_days(services: Container) -> None:
    report = await services.spend_reader.report(ReportGroup.TEAM, LogFilter(), None, "2026-03-31")
    assert (report["start_date"], report["end_date"], report["timezone"]) == (
        "2026-03-02",
        "2026-03-31",
        "Europe/Berlin",
    )
    assert report["rows"] == [] and report["entities"] == []
    assert report["total"]["cost_nanos"] == 0


async def test_adjustments_come_back_as_usd_with_their_time_and_a_clamped_limit(services: Container) -> None:
    master = await principal_of(services, MASTER_KEY)
    created = await services.admin_commands.generate_key(master, KeyGenerateIn(max_budget=5))
    await services.admin_commands.reset_spend(
        master, EntityType.KEY, created["key"], ResetSpendIn(reset_to=0, reason="audit")
    )
    for limit in (0, -5, 10**9):
        rows = await services.spend_reader.adjustments("key", created["token"], limit)
        assert len(rows) == 1
    row = rows[0]
    assert (row["new_spend"], row["previous_spend"], row["reason"]) == (0.0, 0.0, "audit")
    assert row["created_at"] is not None
