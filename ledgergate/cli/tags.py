"""``ledgergate tags ...``: tag budgets, charged by every request carrying the tag (/tag/* of the admin API)."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgergate.cli.entity import EntityKind, Field, add_create, add_delete, add_info, add_list, add_update, table_of
from ledgergate.cli.options import MetadataOption, ModelsOption, parse_metadata
from ledgergate.cli.render import Column, budget_summary, field, money
from ledgergate.cli.spend_reset import add_reset_spend

app = typer.Typer(
    help="Tags: budgets for every request carrying a tag (e.g. a tenant or a feature).", no_args_is_help=True
)

TagArgument = Annotated[str, typer.Argument(metavar="NAME", help="The tag, e.g. tenant/acme.")]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="What the tag stands for.")]

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

TAG = EntityKind(
    noun="tag",
    id_name="name",
    id_argument=TagArgument,
    fields=(
        Field("description", DescriptionOption),
        Field("models", ModelsOption),
        Field("metadata", MetadataOption, parse=parse_metadata),
    ),
    detail_fields=DETAIL_FIELDS,
    title=lambda tag: f"tag {tag.get('name')}",
)

add_create(app, TAG, "Create a tag with a budget.", leading_id=TAG.id_field)
add_list(app, TAG, "List tags with their budget windows.", table_of(LIST_COLUMNS, "no tags"))
add_info(app, TAG, "Show one tag: limits and the spend of every budget window.")
add_update(app, TAG, "Change a tag; only the options given are changed.")
add_delete(
    app,
    TAG,
    "Delete a tag's budget (keys keep the tag; it simply has no budget any more).",
    question=lambda name: f"delete tag {name!r}?",
    done=lambda name, _: f"deleted tag {name}",
)
add_reset_spend(app, TAG, "Set a tag's spend in one budget window (an audited adjustment, enforced at once).")
