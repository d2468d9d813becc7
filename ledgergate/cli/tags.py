"""``ledgergate tags ...``: tag budgets, charged by every request carrying the tag (/tag/* of the admin API)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ledgergate.cli.client import DEFAULT_URL, KeyOption, UrlOption, admin_client
from ledgergate.cli.options import (
    BUDGET_UNSETTABLE,
    BudgetDurationOption,
    BudgetIdOption,
    MaxBudgetOption,
    MetadataOption,
    ModelsOption,
    SoftBudgetOption,
    UnsetOption,
    WindowOption,
    YesOption,
    budget_fields,
    confirm,
    given,
    parse_metadata,
    segment,
    with_unset,
)
from ledgergate.cli.render import Column, JsonOption, budget_summary, detail, field, money, print_table, say, show
from ledgergate.cli.spend_reset import ResetReasonOption, ResetToOption, ResetWindowOption, reset_spend

app = typer.Typer(
    help="Tags: budgets for every request carrying a tag (e.g. a tenant or a feature).", no_args_is_help=True
)

TagArgument = Annotated[str, typer.Argument(metavar="NAME", help="The tag, e.g. tenant/acme.")]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="What the tag stands for.")]
UNSETTABLE = BUDGET_UNSETTABLE | {"description", "models", "metadata"}

LIST_COLUMNS: list[Column] = [
    ("name", field("name")),
    ("description", field("description")),
    ("budgets (spend/max)", budget_summary),
    ("lifetime spend", money("lifetime_spend")),
]
DETAIL_FIELDS: list[Column] = [
    ("name", field("name")),
    ("description", field("description")),
    ("models", field("models")),
    ("budget id", field("budget_id")),
    ("metadata", field("metadata")),
    ("created", field("created_at")),
]


def _tag_fields(description: str | None, models: list[str] | None, metadata: str | None) -> dict[str, Any]:
    return given({"description": description, "models": models, "metadata": parse_metadata(metadata)})


def _show_tag(tag: dict[str, Any]) -> None:
    detail(tag, DETAIL_FIELDS, title=f"tag {tag.get('name')}")


@app.command()
def create(
    name: TagArgument,
    description: DescriptionOption = None,
    models: ModelsOption = None,
    metadata: MetadataOption = None,
    max_budget: MaxBudgetOption = None,
    budget_duration: BudgetDurationOption = None,
    window: WindowOption = None,
    soft_budget: SoftBudgetOption = None,
    budget_id: BudgetIdOption = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a tag with a budget."""
    body = _tag_fields(description, models, metadata)
    body |= budget_fields(max_budget, budget_duration, window, soft_budget, budget_id)
    with admin_client(url, admin_key) as client:
        result = client.post("/tag/new", {"name": name, **body})
    show(result, as_json, _show_tag)


@app.command("list")
def list_tags(
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List tags with their budget windows."""
    with admin_client(url, admin_key) as client:
        result = client.get("/tag/list")
    show(result, as_json, lambda data: print_table(data, LIST_COLUMNS, empty="no tags"))


@app.command()
def info(
    name: TagArgument,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one tag: limits and the spend of every budget window."""
    with admin_client(url, admin_key) as client:
        result = client.get("/tag/info", {"name": name})
    show(result, as_json, _show_tag)


@app.command()
def update(
    name: TagArgument,
    description: DescriptionOption = None,
    models: ModelsOption = None,
    metadata: MetadataOption = None,
    max_budget: MaxBudgetOption = None,
    budget_duration: BudgetDurationOption = None,
    window: WindowOption = None,
    soft_budget: SoftBudgetOption = None,
    budget_id: BudgetIdOption = None,
    unset: UnsetOption = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a tag; only the options given are changed."""
    body = _tag_fields(description, models, metadata)
    body |= budget_fields(max_budget, budget_duration, window, soft_budget, budget_id)
    body = with_unset(body, unset, UNSETTABLE)
    with admin_client(url, admin_key) as client:
        result = client.post("/tag/update", {"name": name, **body})
    show(result, as_json, _show_tag)


@app.command()
def delete(
    name: TagArgument,
    yes: YesOption = False,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a tag's budget (keys keep the tag; it simply has no budget any more)."""
    confirm(f"delete tag {name!r}?", yes)
    with admin_client(url, admin_key) as client:
        result = client.post("/tag/delete", {"name": name})
    show(result, as_json, lambda _: say(f"deleted tag {name}"))


@app.command("reset-spend")
def reset_spend_command(
    name: TagArgument,
    reset_to: ResetToOption,
    window: ResetWindowOption = None,
    reason: ResetReasonOption = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a tag's spend in one budget window (an audited adjustment, enforced at once)."""
    reset_spend(f"/tag/{segment(name)}/reset_spend", reset_to, window, reason, url, admin_key, as_json)
