"""/spend/report days are the gateway timezone's calendar days (the periods of a ``1d`` budget window), and its
query is validated. The gateway runs in-process with an injected clock, so requests can be charged at chosen
instants around a daylight-saving change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from ledgergate.app import create_app
from ledgergate.config import load_config
from ledgergate.container import Container, build_container
from tests.api.entities.helpers import REQUEST_NANOS, TOKENS, error_of, get
from tests.builders import ManualClock
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import FLAT_MODEL, MASTER_KEY, gateway_config

NEW_YORK = ZoneInfo("America/New_York")  # clocks go forward at 02:00 on 2026-03-08: a 23-hour day


class NewYorkClock(ManualClock):
    def set_local(self, *fields: int) -> None:
        self.now = datetime(*fields, tzinfo=NEW_YORK).timestamp()  # type: ignore[misc]


@dataclass
class InProcessGateway:
    client: httpx.AsyncClient
    clock: NewYorkClock

    async def charge_at(self, secret: str, *local: int) -> None:
        """One request costing ``REQUEST_NANOS``, charged at the New York wall-clock time ``local``."""
        self.clock.set_local(*local)
        body = {"model": FLAT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": TOKENS}
        response = await self.client.post("/v1/chat/completions", json=body, headers={"authorization": secret})
        assert response.status_code == 200, response.text


async def _never() -> Container:
    raise AssertionError("the container is built by the fixture, with the test's clock")


@pytest.fixture
async def new_york(tmp_path: Path, fake_upstream: FakeUpstream) -> AsyncIterator[InProcessGateway]:
    document = gateway_config(fake_upstream.base_url, f"sqlite+aiosqlite:///{tmp_path / 'lg.db'}", "standard")
    document["general_settings"]["timezone"] = "America/New_York"
    config_path = tmp_path / "ledgergate.yaml"
    config_path.write_text(yaml.safe_dump(document), encoding="utf-8")
    clock = NewYorkClock(datetime(2026, 3, 7, 12, tzinfo=NEW_YORK).timestamp())
    container = await build_container(load_config(config_path, environ={}), clock=clock)
    app = create_app(_never)
    app.state.container = container
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
            yield InProcessGateway(client, clock)
    finally:
        await container.aclose()


async def _key(gateway: InProcessGateway) -> str:
    response = await gateway.client.post("/key/generate", json={})
    assert response.status_code == 200, response.text
    return f"Bearer {response.json()['key']}"


async def test_spend_report_days_are_local_calendar_days_across_dst(new_york: InProcessGateway) -> None:
    """A request at 23:30 local on the 23-hour DST day is reported on that day, not on the next UTC date; the
    same dates given to /spend/logs select the same records."""
    secret = await _key(new_york)
    await new_york.charge_at(secret, 2026, 3, 7, 23, 30)  # 04:30Z on the 8th
    await new_york.charge_at(secret, 2026, 3, 8, 0, 30)
    await new_york.charge_at(secret, 2026, 3, 8, 23, 30)  # 03:30Z on the 9th
    await new_york.charge_at(secret, 2026, 3, 9, 0, 10)
    report: dict[str, Any] = await get(
        new_york.client, "/spend/report", group_by="model", start_date="2026-03-07", end_date="2026-03-09"
    )
    assert report["timezone"] == "America/New_York"
    per_day = {row["date"]: (row["requests"], row["cost_nanos"]) for row in report["rows"]}
    assert per_day == {
        "2026-03-07": (1, REQUEST_NANOS),
        "2026-03-08": (2, 2 * REQUEST_NANOS),
        "2026-03-09": (1, REQUEST_NANOS),
    }
    one_day = await get(new_york.client, "/spend/report", start_date="2026-03-08", end_date="2026-03-08")
    assert (one_day["total"]["requests"], one_day["total"]["cost_nanos"]) == (2, 2 * REQUEST_NANOS)
    logs = await get(new_york.client, "/spend/logs", start_date="2026-03-08", end_date="2026-03-08")
    assert sorted(row["startTime"] for row in logs) == ["2026-03-08T05:30:00Z", "2026-03-09T03:30:00Z"]


async def test_spend_report_default_range_is_the_last_30_local_days(new_york: InProcessGateway) -> None:
    """Without dates the report covers today (in the gateway timezone, by the gateway clock) and the 29 days
    before it."""
    new_york.clock.set_local(2026, 3, 9, 0, 10)
    report = await get(new_york.client, "/spend/report")
    assert (report["start_date"], report["end_date"], report["group_by"]) == ("2026-02-08", "2026-03-09", "key")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "planet"}, "group_by"),
        ({"start_date": "2026-02-30"}, "start_date"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2026-03-09T00:00:00Z"}, "end_date"),
        ({"start_date": "2026-03-09", "end_date": "2026-03-08"}, "start_date"),
        ({"start_date": "2025-01-01", "end_date": "2026-01-02"}, "end_date"),
        ({"end_date": "9999-12-31"}, "end_date"),
        ({"start_date": "1969-12-31", "end_date": "1970-01-01"}, "start_date"),
        ({"team_id": ""}, "team_id"),
        ({"tag": "a\x00b"}, "tag"),
    ],
)
async def test_spend_report_bad_query_is_400_naming_the_parameter(
    new_york: InProcessGateway, params: dict[str, str], param: str
) -> None:
    """Unknown groupings, impossible or inverted dates, ranges over 366 days and ids no database stores: 400 with
    the parameter named, never a 5xx."""
    error_of(await new_york.client.get("/spend/report", params=params), 400, param)


async def test_spend_report_accepts_the_widest_range_at_the_end_of_time(new_york: InProcessGateway) -> None:
    """The last representable days still have a start and an end in every timezone (no overflow, no 5xx)."""
    report = await get(new_york.client, "/spend/report", start_date="9999-01-01", end_date="9999-12-30")
    assert report["rows"] == [] and report["total"]["requests"] == 0
    logs = await get(new_york.client, "/spend/logs", start_date="1970-01-01", end_date="9999-12-30")
    assert logs == []
