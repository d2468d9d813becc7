"""Options shared by the entity commands (budgets, models, metadata, confirmation) and their parsing.

Options left out are not sent, so an update changes only what was named on the command line; ``--unset FIELD``
sends an explicit null, which the admin API reads as "remove".
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any
from urllib.parse import quote

import typer

BUDGET_PANEL = "Budget"

MaxBudgetOption = Annotated[
    float | None,
    typer.Option(
        "--max-budget",
        help="USD limit of the primary window (a lifetime limit without --budget-duration).",
        rich_help_panel=BUDGET_PANEL,
    ),
]
BudgetDurationOption = Annotated[
    str | None,
    typer.Option(
        "--budget-duration",
        help="Period of --max-budget: <n><unit> with unit s m h d w mo (e.g. 30d), or hourly/daily/weekly/monthly.",
        rich_help_panel=BUDGET_PANEL,
    ),
]
WindowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--window",
        metavar="DURATION=USD",
        help="A further concurrent budget window, e.g. 1h=0.5 (repeatable; replaces every extra window).",
        rich_help_panel=BUDGET_PANEL,
    ),
]
SoftBudgetOption = Annotated[
    float | None,
    typer.Option("--soft-budget", help="USD level that raises alerts but never refuses.", rich_help_panel=BUDGET_PANEL),
]
BudgetIdOption = Annotated[
    str | None,
    typer.Option(
        "--budget-id", help="Also enforce this shared budget object (see `budgets`).", rich_help_panel=BUDGET_PANEL
    ),
]
ModelsOption = Annotated[
    list[str] | None,
    typer.Option("--model", metavar="MODEL", help="A model this may use (repeatable; none: every model)."),
]
MetadataOption = Annotated[str | None, typer.Option("--metadata", metavar="JSON", help="A JSON object of metadata.")]
UnsetOption = Annotated[
    list[str] | None,
    typer.Option("--unset", metavar="FIELD", help="Remove a field, e.g. max_budget or budget_limits (repeatable)."),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def parse_usd(value: str, option: str) -> float:
    try:
        amount = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a USD amount", param_hint=option) from None
    if not math.isfinite(amount) or amount < 0:
        raise typer.BadParameter(f"{value!r} must be a finite amount >= 0", param_hint=option)
    return amount


def parse_window(spec: str) -> dict[str, Any]:
    """``1h=0.5`` -> ``{"budget_duration": "1h", "max_budget": 0.5}`` (the gateway validates the period)."""
    duration, separator, amount = spec.partition("=")
    if not separator or not duration.strip():
        raise typer.BadParameter(f"{spec!r}: expected DURATION=USD, e.g. 1h=0.5", param_hint="'--window'")
    return {"budget_duration": duration.strip(), "max_budget": parse_usd(amount.strip(), "'--window'")}


def parse_metadata(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON ({exc})", param_hint="'--metadata'") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="'--metadata'")
    return value


def budget_fields(
    max_budget: float | None,
    budget_duration: str | None,
    window_specs: list[str] | None,
    soft_budget: float | None,
    budget_id: str | None = None,
) -> dict[str, Any]:
    """The budget part of a create/update body, only with what was given."""
    for amount, option in ((max_budget, "'--max-budget'"), (soft_budget, "'--soft-budget'")):
        if amount is not None:
            parse_usd(str(amount), option)
    body: dict[str, Any] = {
        "max_budget": max_budget,
        "budget_duration": budget_duration,
        "soft_budget": soft_budget,
        "budget_id": budget_id,
    }
    if window_specs:
        body["budget_limits"] = [parse_window(spec) for spec in window_specs]
    return given(body)


def given(body: dict[str, Any]) -> dict[str, Any]:
    """Drop the options that were not given (None): the API reads an absent field as "unchanged"."""
    return {name: value for name, value in body.items() if value is not None}


def with_unset(body: dict[str, Any], unset: list[str] | None, allowed: frozenset[str]) -> dict[str, Any]:
    """Add ``FIELD: null`` for each ``--unset FIELD``; a field both set and unset is a usage error."""
    for name in unset or []:
        if name not in allowed:
            choices = ", ".join(sorted(allowed))
            raise typer.BadParameter(f"{name!r} cannot be unset (one of: {choices})", param_hint="'--unset'")
        if name in body:
            raise typer.BadParameter(f"{name!r} is both set and unset", param_hint="'--unset'")
        body[name] = None
    return body


def segment(value: str) -> str:
    """``value`` as one URL path segment (ids may contain ``/``, ``?`` or spaces)."""
    return quote(value, safe="")


def confirm(question: str, yes: bool) -> None:
    if not yes and not typer.confirm(question, default=False):
        raise typer.Abort()


BUDGET_UNSETTABLE = frozenset({"max_budget", "budget_duration", "budget_limits", "soft_budget", "budget_id"})
