"""Spend-over-time bar charts, laid out here and drawn as inline SVG by the template (no chart library)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledgergate.dashboard.formatting import usd_text

WIDTH = 720
HEIGHT = 200
LEFT = 70  # room for the y-axis amounts
RIGHT = 8
TOP = 12
BOTTOM = 26  # room for the x-axis labels
_STEPS = (1, 2, 5)


@dataclass(frozen=True, slots=True)
class Point:
    label: str  # under the axis, e.g. "14:00" (may be shown only for some bars)
    title: str  # the tooltip, e.g. "2026-11-22 14:00 UTC: $0.0031"
    nanos: int


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    text: str


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_labels: tuple[Tick, ...]
    total_nanos: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM


def nice_ceiling(value_nanos: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is >= ``value_nanos`` (an axis maximum that reads well)."""
    scale = 1
    while True:
        for step in _STEPS:
            if step * scale >= value_nanos:
                return step * scale
        scale *= 10


def bar_chart(title: str, points: Sequence[Point], label_every: int) -> BarChart:
    """Bars left to right; every ``label_every``-th gets its label under the axis."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    top_nanos = nice_ceiling(max((p.nanos for p in points), default=0) or 1)
    slot = plot_width / max(len(points), 1)
    gap = min(slot * 0.2, 4.0)
    bars = []
    labels = []
    for index, point in enumerate(points):
        height = plot_height * point.nanos / top_nanos
        if point.nanos > 0:
            height = max(height, 1.0)  # a tiny spend stays visible
        x = LEFT + index * slot
        bars.append(
            Bar(
                round(x + gap / 2, 2),
                round(TOP + plot_height - height, 2),
                round(slot - gap, 2),
                round(height, 2),
                point.title,
            )
        )
        if index % label_every == 0:
            labels.append(Tick(round(x + slot / 2, 2), point.label))
    ticks = tuple(
        Tick(round(TOP + plot_height * (1 - fraction), 2), usd_text(top_nanos * numerator // 2))
        for numerator, fraction in ((0, 0.0), (1, 0.5), (2, 1.0))
    )
    return BarChart(title, tuple(bars), ticks, tuple(labels), sum(p.nanos for p in points))
