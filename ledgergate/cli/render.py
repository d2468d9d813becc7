"""Terminal output of the CLI: rich tables on stdout, raw JSON with ``--json``, errors as one red line on stderr.

The admin API speaks USD as JSON numbers; these helpers only format them for people and never compute with them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.status import Status

from ledgergate.cli.fit import FitColumn, fitted, records

JsonOption = Annotated[bool, typer.Option("--json", help="Print the gateway's raw JSON response instead of a table.")]
Column = tuple[str, Callable[[Mapping[str, Any]], str]]
# Columns whose every line is one unit (an amount with its window, a timestamp with its space): never wrapped.
# Every other column wraps at spaces only; no column is ever folded inside a word (cli/fit.py).
_ATOMIC_COLUMNS = frozenset(
    {
        "key",
        "request_id",
        "time",
        "window",
        "team_id",
        "user_id",
        "budget_id",
        "spend",
        "held",
        "max budget",
        "status",
        "budgets (spend/max)",
        "resets at",
        "tokens in/out",
    }
)
# USD amounts are shown to the nano (the ledger's unit), without trailing zeros past the cents.
_USD_DECIMALS = 9


def _stdout() -> Console:
    # built per use: the width (COLUMNS) and the stream are those of this moment, not of import time
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def emit(renderable: RenderableType) -> None:
    """A table (or other rich renderable) on stdout; never cropped (``fit.py`` sized it for the width)."""
    _stdout().print(renderable, crop=False)


def terminal_width() -> int:
    return _stdout().width


def status(message: str) -> Status:
    """A spinner on stderr while a long operation runs (``with status(...):``)."""
    return _stderr().status(message)


def fail(message: str) -> NoReturn:
    """End the command: ``error: <message>`` in red on stderr, exit code 1."""
    _stderr().print(f"[bold red]error:[/bold red] [red]{escape(message)}[/red]", soft_wrap=True)
    raise typer.Exit(1)


def say(message: str) -> None:
    """A one-line result on stdout, never wrapped (so it can be grepped and copied); plain text, so ids with
    brackets print as they are."""
    _stdout().print(message, soft_wrap=True, markup=False)


def note(message: str) -> None:
    """A side remark for people (stderr, so stdout stays clean for pipes); rich markup, so escape any data."""
    _stderr().print(message, soft_wrap=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def usd(value: Any) -> str:
    """``$0.50``, ``$0.000123``, ``-`` for no value."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    text = f"{abs(value):,.{_USD_DECIMALS}f}".rstrip("0")
    whole, _, cents = text.partition(".")
    sign = "-" if value < 0 else ""
    return f"{sign}${whole}.{cents.ljust(2, '0')}"


def usd_from_nanos(amount_nanos: int) -> str:
    """An exact integer nano-USD amount as ``usd`` shows it (no float rounding on the way)."""
    sign = "-" if amount_nanos < 0 else ""
    whole, fraction = divmod(abs(amount_nanos), 1_000_000_000)
    cents = f"{fraction:09d}".rstrip("0").ljust(2, "0")
    return f"{sign}${whole:,}.{cents}"


def text(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def field(name: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda row: text(row.get(name))


def money(name: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda row: usd(row.get(name))


def windows(entity: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every budget window of an entity object, the primary first; a budget without a period is ``lifetime``."""
    rows: list[dict[str, Any]] = []
    if entity.get("max_budget") is not None or entity.get("budget_duration") is not None:
        rows.append(
            {
                "budget_duration": entity.get("budget_duration") or "lifetime",
                "max_budget": entity.get("max_budget"),
                "spend": entity.get("spend"),
                "held": None,
                "reset_at": entity.get("budget_reset_at"),
            }
        )
    rows.extend(entity.get("budget_limits") or [])
    return rows


def budget_summary(entity: Mapping[str, Any]) -> str:
    """One line per window: ``1h $0.10/$0.50``."""
    lines = [f"{w['budget_duration']} {usd(w.get('spend'))}/{usd(w.get('max_budget'))}" for w in windows(entity)]
    return "\n".join(lines) or "-"


def table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    wrap: frozenset[str] | None = None,
) -> RenderableType:
    """The rows as a table fitted to the terminal (records when no table fits, see ``fit.py``).

    ``wrap``: the only columns that may wrap at spaces (default: all but ``_ATOMIC_COLUMNS``)."""
    materialised = list(rows)
    fit_columns = [
        FitColumn(
            header=header,
            cells=[render(row) for row in materialised],
            atomic=header in _ATOMIC_COLUMNS if wrap is None else header not in wrap,
        )
        for header, render in columns
    ]
    return fitted(fit_columns, terminal_width(), title)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, empty: str) -> None:
    if not rows:
        note(empty)
        return
    emit(table(rows, columns))


def detail(entity: Mapping[str, Any], fields: Sequence[Column], *, title: str) -> None:
    """One object as ``field  value`` lines (a value too long for the line goes below its field, whole), then
    its budget windows (if any)."""
    pairs = [(label, render(entity)) for label, render in fields]
    pairs += [
        ("spend (primary window)", usd(entity.get("spend"))),
        ("lifetime spend", usd(entity.get("lifetime_spend"))),
        ("soft budget", usd(entity.get("soft_budget"))),
    ]
    emit(records([FitColumn(label, [value], atomic=False) for label, value in pairs], terminal_width(), title))
    budget_windows = windows(entity)
    if budget_windows:
        window_columns: list[Column] = [
            ("window", field("budget_duration")),
            ("spend", money("spend")),
            ("held", money("held")),
            ("max budget", money("max_budget")),
            ("resets at", field("reset_at")),
        ]
        emit(table(budget_windows, window_columns, title="budget windows"))


def show(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """``--json``: the response as the gateway sent it; otherwise ``render(data)``."""
    if as_json:
        print_json(data)
    else:
        render(data)
