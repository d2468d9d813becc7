"""The overview page: spend today and this month, top spenders, spend over time, windows near their limit."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from ledgergate.container import Container
from ledgergate.dashboard.charts import BarChart, Point, bar_chart
from ledgergate.dashboard.formatting import usd_text
from ledgergate.dashboard.kinds import BY_TYPE, KindInfo
from ledgergate.dashboard.listing import EntityRow, entity_rows, visible_entities
from ledgergate.dashboard.viewer import Viewer
from ledgergate.domain.charging import EntityType
from ledgergate.domain.durations import parse_duration, period_of
from ledgergate.domain.spend_filters import Dimension

US_PER_S = 1_000_000
DAYS_SHOWN = 30
HOURS_SHOWN = 48
# Local days are summed from quarter hours: every UTC offset in use is a multiple of 15 minutes.
QUARTER_HOUR_US = 900 * US_PER_S
TOP_N = 5


@dataclass(frozen=True, slots=True)
class TopEntry:
    name: str
    href: str | None  # detail page, when the viewer may open it
    nanos: int


@dataclass(frozen=True, slots=True)
class Overview:
    today_nanos: int
    month_nanos: int
    month_label: str
    tops: dict[str, list[TopEntry]]
    daily: BarChart
    hourly: BarChart
    near_limit: list[tuple[KindInfo, EntityRow]]
    timezone: str


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * US_PER_S


async def _top(
    container: Container, viewer: Viewer, dimension: Dimension, start_us: int, end_us: int
) -> list[TopEntry]:
    found = await container.spend_reader.top(dimension, start_us, end_us, TOP_N, viewer.team_scope)
    entries = []
    for entity_id, nanos in found:
        if dimension is Dimension.MODEL:
            entries.append(TopEntry(entity_id, None, nanos))
            continue
        kind = BY_TYPE[EntityType(dimension.value)]
        entity = await container.directory.get(kind.type, entity_id)
        name = entity.display_name() if entity is not None else f"{entity_id} (deleted)"
        if kind.type is EntityType.KEY and entity is None:
            name = f"{entity_id[:10]}… (deleted)"
        href = f"/{kind.slug}/view/{quote(entity_id, safe='')}" if entity is not None and viewer.sees(entity) else None
        entries.append(TopEntry(name, href, nanos))
    return entries


async def _daily(container: Container, viewer: Viewer, today: date, tz: ZoneInfo) -> BarChart:
    days = [today - timedelta(days=offset) for offset in range(DAYS_SHOWN - 1, -1, -1)]
    starts = [datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC) for d in days]
    end = datetime(today.year, today.month, today.day, tzinfo=tz) + timedelta(days=1)
    start_us, end_us = _us(starts[0]), _us(end.astimezone(UTC))
    quarters = await container.spend_reader.bucket_nanos(start_us, end_us, QUARTER_HOUR_US, viewer.team_scope)
    bounds = [_us(s) for s in starts] + [end_us]
    totals = [0] * len(days)
    for index, nanos in quarters.items():
        day = bisect.bisect_right(bounds, start_us + index * QUARTER_HOUR_US) - 1
        if 0 <= day < len(days):
            totals[day] += nanos
    points = [
        Point(day.strftime("%d %b"), f"{day:%a %d %b %Y}: {usd_text(total)}", total)
        for day, total in zip(days, totals, strict=True)
    ]
    return bar_chart(f"Spend per day, last {DAYS_SHOWN} days", points, label_every=5)


async def _hourly(container: Container, viewer: Viewer, now_s: float, tz: ZoneInfo) -> BarChart:
    current_hour_s = int(now_s) - int(now_s) % 3600
    start_s = current_hour_s - (HOURS_SHOWN - 1) * 3600
    hours = await container.spend_reader.bucket_nanos(
        start_s * US_PER_S, (current_hour_s + 3600) * US_PER_S, 3600 * US_PER_S, viewer.team_scope
    )
    points = []
    for index in range(HOURS_SHOWN):
        local = datetime.fromtimestamp(start_s + index * 3600, tz)
        nanos = hours.get(index, 0)
        points.append(Point(local.strftime("%H:%M"), f"{local:%a %d %b %H:00}: {usd_text(nanos)}", nanos))
    return bar_chart(f"Spend per hour, last {HOURS_SHOWN} hours", points, label_every=6)


async def near_limit(container: Container, viewer: Viewer) -> list[tuple[KindInfo, EntityRow]]:
    """Every entity the viewer sees with a window at 80% of its limit or more, fullest first."""
    found: list[tuple[KindInfo, EntityRow]] = []
    for kind in viewer.kinds():
        entities = await visible_entities(container, viewer, kind)
        # Only limited windows can be near a limit; skipping the rest saves a ledger query per unlimited entity.
        limited = [e for e in entities if await container.directory.effective_windows(e)]
        for row in await entity_rows(container, limited):
            if row.worst_level != "ok":
                found.append((kind, row))
    found.sort(key=lambda item: -item[1].max_percent)
    return found


async def build_overview(container: Container, viewer: Viewer) -> Overview:
    settings = container.config.settings
    tz = ZoneInfo(settings.timezone)
    now_s = container.clock.now_s()
    now = datetime.fromtimestamp(now_s, UTC)
    day_start, day_end = period_of(now, parse_duration("1d"), tz)
    month_start, month_end = period_of(now, parse_duration("1mo"), tz)
    month_range = (_us(month_start), _us(month_end))
    scope = viewer.team_scope
    dimensions = [Dimension.KEY, Dimension.TEAM, Dimension.TAG, Dimension.MODEL]
    if not viewer.reads_all:
        dimensions = [Dimension.KEY, Dimension.TEAM, Dimension.MODEL]
    return Overview(
        today_nanos=await container.spend_reader.total_nanos(_us(day_start), _us(day_end), scope),
        month_nanos=await container.spend_reader.total_nanos(*month_range, scope),
        month_label=month_start.astimezone(tz).strftime("%B %Y"),
        tops={d.value: await _top(container, viewer, d, *month_range) for d in dimensions},
        daily=await _daily(container, viewer, now.astimezone(tz).date(), tz),
        hourly=await _hourly(container, viewer, now_s, tz),
        near_limit=await near_limit(container, viewer),
        timezone=settings.timezone,
    )
