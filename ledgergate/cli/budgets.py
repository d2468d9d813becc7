"""``ledgergate budgets ...``: shared budget objects, referenced by ``--budget-id`` (/budget/* of the admin API).

A shared budget is a limit, never charged itself: every entity referencing it keeps its own spend against it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ledgergate.cli.client import DEFAULT_URL, KeyOption, UrlOption, admin_client
from ledgergate.cli.options import (
    BudgetDurationOption,
    MaxBudgetOption,
    SoftBudgetOption,
    UnsetOption,
    WindowOption,
    YesOption,
    budget_fields,
    confirm,
    given,
    with_unset,
)
from ledgergate.cli.render import Column, JsonOption, budget_summary, detail, field, money, print_table, say, show

app = typer.Typer(help="Shared budgets: one set of limits applied to many keys, users or teams.", no_args_is_help=True)

BudgetArgument = Annotated[str, typer.Argument(metavar="BUDGET_ID", help="The budget's id.")]
UNSETTABLE = frozenset({"max_budget", "budget_duration", "budget_limits", "soft_budget"})

LIST_COLUMNS: list[Column] = [
    ("budget_id", field("budget_id")),
    ("limits", budget_summary),
    ("soft budget", money("soft_budget")),
    ("created", field("created_at")),
]
DETAIL_FIELDS: list[Column] = [("budget_id", field("budget_id")), ("created", field("created_at"))]


def _show_budget(budget: dict[str, object]) -> None:
    detail(budget, DETAIL_FIELDS, title=f"budget {budget.get('budget_id')}")


@app.command()
def create(
    budget_id: Annotated[
        str | None, typer.Option("--budget-id", help="The budget's id (generated when absent).")
    ] = None,
    max_budget: MaxBudgetOption = None,
    budget_duration: BudgetDurationOption = None,
    window: WindowOption = None,
    soft_budget: SoftBudgetOption = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a shared budget."""
    body = budget_fields(max_budget, budget_duration, window, soft_budget) | given({"budget_id": budget_id})
    with admin_client(url, admin_key) as client:
        result = client.post("/budget/new", body)
    show(result, as_json, _show_budget)


@app.command("list")
def list_budgets(
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List shared budgets."""
    with admin_client(url, admin_key) as client:
        result = client.get("/budget/list")
    show(result, as_json, lambda data: print_table(data, LIST_COLUMNS, empty="no shared budgets"))


@app.command()
def info(
    budget_id: BudgetArgument,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one shared budget."""
    with admin_client(url, admin_key) as client:
        result = client.get("/budget/info", {"budget_id": budget_id})
    show(result, as_json, _show_budget)


@app.command()
def update(
    budget_id: BudgetArgument,
    max_budget: MaxBudgetOption = None,
    budget_duration: BudgetDurationOption = None,
    window: WindowOption = None,
    soft_budget: SoftBudgetOption = None,
    unset: UnsetOption = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a shared budget; it applies at once to everything that references it."""
    body = with_unset(budget_fields(max_budget, budget_duration, window, soft_budget), unset, UNSETTABLE)
    with admin_client(url, admin_key) as client:
        result = client.post("/budget/update", {"budget_id": budget_id, **body})
    show(result, as_json, _show_budget)


@app.command()
def delete(
    budget_id: BudgetArgument,
    yes: YesOption = False,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a shared budget (refused while anything still references it)."""
    confirm(f"delete shared budget {budget_id!r}?", yes)
    with admin_client(url, admin_key) as client:
        result = client.post("/budget/delete", {"budget_id": budget_id})
    show(result, as_json, lambda _: say(f"deleted budget {budget_id}"))
