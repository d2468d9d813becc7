"""Fitting a table into the terminal's width without ever splitting a token, an id or a dollar amount.

rich folds a cell that does not fit in the middle of a word (a key hash over two lines) or crops it (``$0.0``
for ``$0.0000306``). Here every column gets a width of at least its longest word (its longest line for
columns whose lines are units: amounts, times, budget windows), the widest columns give up space first, and a
table that still does not fit is printed as one block of ``field  value`` lines per row instead.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# SIMPLE_HEAD without outer padding: one edge character on each side, three characters between columns.
_EDGES = 2
_GAP = 3
_INDENT = "  "


@dataclass(frozen=True, slots=True)
class FitColumn:
    header: str
    cells: Sequence[str]
    atomic: bool  # every line of a cell is one unit: never wrapped, not even at its spaces

    def natural_width(self) -> int:
        return max([len(self.header), *(len(line) for cell in self.cells for line in cell.split("\n"))])

    def minimum_width(self) -> int:
        header_word = max((len(word) for word in self.header.split()), default=0)
        if self.atomic:
            return max([header_word, *(len(line) for cell in self.cells for line in cell.split("\n"))])
        return max([header_word, *(len(word) for cell in self.cells for word in cell.split())])


def fit_widths(columns: Sequence[FitColumn], width: int) -> list[int] | None:
    """Column widths that fit ``width`` with no word split, or None when none do."""
    widths = [column.natural_width() for column in columns]
    minimums = [column.minimum_width() for column in columns]
    excess = sum(widths) + _GAP * (len(columns) - 1) + _EDGES - width
    while excess > 0:
        shrinkable = [index for index, column_width in enumerate(widths) if column_width > minimums[index]]
        if not shrinkable:
            return None
        widest = max(shrinkable, key=lambda index: widths[index])
        widths[widest] -= 1
        excess -= 1
    return widths


def _table(columns: Sequence[FitColumn], widths: Sequence[int], title: str | None) -> Table:
    grid = Table(
        title=escape(title) if title else None,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column, column_width in zip(columns, widths, strict=True):
        # wrapping stays on (a long header wraps at its spaces); every cell line of an atomic column, and every
        # word of another one, is at most column_width long, so no cell is ever broken inside a word
        grid.add_column(escape(column.header), width=column_width, overflow="fold")
    for row in zip(*(column.cells for column in columns), strict=True):
        grid.add_row(*(escape(cell) for cell in row))
    return grid


def _field_lines(label: str, label_width: int, value: str, width: int) -> list[str]:
    value_lines = value.split("\n")
    if label_width + len(_INDENT) + max(len(line) for line in value_lines) <= width:
        pad = " " * (label_width + len(_INDENT))
        return [f"{label:<{label_width}}{_INDENT}{value_lines[0]}", *(pad + line for line in value_lines[1:])]
    lines = [label]
    for line in value_lines:
        # break only at spaces: a word longer than the line stays whole
        wrapped = textwrap.wrap(line, width - len(_INDENT), break_long_words=False, break_on_hyphens=False)
        lines += [_INDENT + part for part in wrapped or [""]]
    return lines


def records(columns: Sequence[FitColumn], width: int, title: str | None) -> Text:
    """One block per row: each field's label then its value, on one line when it fits, else indented below."""
    label_width = max(len(column.header) for column in columns)
    lines = [title] if title else []
    for index in range(len(columns[0].cells) if columns else 0):
        if lines:
            lines.append("")
        for column in columns:
            lines += _field_lines(column.header, label_width, column.cells[index], width)
    return Text("\n".join(lines), no_wrap=True, overflow="ignore")


def fitted(columns: Sequence[FitColumn], width: int, title: str | None = None) -> RenderableType:
    """A table of ``columns`` at most ``width`` wide, or its rows as records when no table fits."""
    widths = fit_widths(columns, width)
    if widths is None:
        return records(columns, width, title)
    return _table(columns, widths, title)
