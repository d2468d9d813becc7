"""``ledgergate budgets ...``: shared budget objects, referenced by ``--budget-id`` (/budget/* of the admin API).

A shared budget is a limit, never charged itself: every entity referencing it keeps its own spend against it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ledgergate.cli.entity import EntityKind, Field, add_create, add_delete, add_info, add_list, add_update, table_of
from ledgergate.cli.render import Column, budget_summary, field, money

app = typer.Typer(help="Shared budgets: one set of limits applied to many keys, users or teams.", no_args_is_help=True)

BudgetArgument = Annotated[str, typer.Argument(metavar="BUDGET_ID", help="The budget's id.")]

LIST_COLUMNS: list[Column] = [
    ("budget_id", field("budget_id")),
    ("limits", budget_summary),
    ("soft budget", money("soft_budget")),
    ("created", field("created_at")),
]
DETAIL_FIELDS: list[Column] = [("budget_id", field("budget_id")), ("created", field("created_at"))]

BUDGET = EntityKind(
    noun="budget",
    id_name="budget_id",
    id_argument=BudgetArgument,
    fields=(),
    detail_fields=DETAIL_FIELDS,
    title=lambda budget: f"budget {budget.get('budget_id')}",
    shares_budgets=False,
)
NEW_BUDGET_ID = Field(
    "budget_id", Annotated[str | None, typer.Option("--budget-id", help="The budget's id (generated when absent).")]
)

add_create(app, BUDGET, "Create a shared budget.", leading_id=NEW_BUDGET_ID)
add_list(app, BUDGET, "List shared budgets.", table_of(LIST_COLUMNS, "no shared budgets"))
add_info(app, BUDGET, "Show one shared budget.")
add_update(app, BUDGET, "Change a shared budget; it applies at once to everything that references it.")
add_delete(
    app,
    BUDGET,
    "Delete a shared budget (refused while anything still references it).",
    question=lambda budget_id: f"delete shared budget {budget_id!r}?",
    done=lambda budget_id, _: f"deleted budget {budget_id}",
)
