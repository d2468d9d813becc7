"""``ledgergate keys ...``: virtual keys (/key/* of the admin API)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import typer

from ledgergate.cli.entity import (
    EntityKind,
    Field,
    Values,
    add_create,
    add_delete,
    add_info,
    add_list,
    add_update,
    command,
    parameter,
    post,
    table_of,
)
from ledgergate.cli.options import MetadataOption, ModelsOption, parse_metadata
from ledgergate.cli.render import Column, budget_summary, field, note, say, show
from ledgergate.cli.spend_reset import add_reset_spend

app = typer.Typer(help="Virtual keys: issue, inspect, block and reset their budgets.", no_args_is_help=True)

KeyArgument = Annotated[str, typer.Argument(metavar="KEY", help="The key's secret (sk-...) or its token (hash).")]
AliasOption = Annotated[str | None, typer.Option("--alias", help="A human-readable name (key_alias).")]
TagsOption = Annotated[
    list[str] | None, typer.Option("--tag", metavar="TAG", help="A tag charged with this key's spend (repeatable).")
]
DurationOption = Annotated[str | None, typer.Option("--duration", help="Expiry from now, e.g. 30d.")]
UserIdOption = Annotated[str | None, typer.Option("--user-id", help="The user who owns the key.")]
TeamIdOption = Annotated[str | None, typer.Option("--team-id", help="The team the key belongs to.")]
OrgIdOption = Annotated[str | None, typer.Option("--organization-id", help="The organization charged.")]

LIST_COLUMNS: list[Column] = [
    ("token", field("token")),
    ("alias", field("key_alias")),
    ("user", field("user_id")),
    ("team", field("team_id")),
    ("blocked", field("blocked")),
    ("budgets (spend/max)", budget_summary),
]
DETAIL_FIELDS: list[Column] = [
    ("token", field("token")),
    ("key", field("key_name")),
    ("alias", field("key_alias")),
    ("user", field("user_id")),
    ("team", field("team_id")),
    ("organization", field("organization_id")),
    ("blocked", field("blocked")),
    ("expires", field("expires")),
    ("models", field("models")),
    ("tags", field("tags")),
    ("budget id", field("budget_id")),
    ("metadata", field("metadata")),
    ("created", field("created_at")),
]

KEY = EntityKind(
    noun="key",
    id_name="key",
    id_argument=KeyArgument,
    fields=(
        Field("alias", AliasOption, "key_alias"),
        Field("models", ModelsOption),
        Field("tags", TagsOption),
        Field("duration", DurationOption),
        Field("user_id", UserIdOption),
        Field("team_id", TeamIdOption),
        Field("organization_id", OrgIdOption),
        Field("metadata", MetadataOption, parse=parse_metadata),
    ),
    detail_fields=DETAIL_FIELDS,
    title=lambda key: f"key {key.get('key_alias') or key.get('key_name') or ''}".rstrip(),
)
SECRET = Field(
    "secret",
    Annotated[str | None, typer.Option("--secret", help="Use this secret (sk-...) instead of a random one.")],
    "key",
)
LIST_FILTERS = (
    Field("user_id", Annotated[str | None, typer.Option("--user-id", help="Only this user's keys.")]),
    Field("team_id", Annotated[str | None, typer.Option("--team-id", help="Only this team's keys.")]),
    Field("alias", Annotated[str | None, typer.Option("--alias", help="Only keys with this alias.")], "key_alias"),
    Field("page", Annotated[int, typer.Option(min=1, help="Page number, from 1.")], default=1),
    Field("size", Annotated[int, typer.Option(min=1, max=1000, help="Keys per page.")], default=100),
)
KeysArgument = Annotated[list[str], typer.Argument(metavar="KEY...", help="Secrets or tokens of the keys to delete.")]


def _render_created(data: dict[str, Any]) -> None:
    KEY.show(data)
    say(f"secret: {data.get('key')}")
    note("[yellow]store the secret now: the gateway keeps only its hash[/yellow]")


def _set_blocked(blocked: bool, values: Values) -> None:
    key = values["key"]
    result = post(values, "/key/block" if blocked else "/key/unblock", {"key": key})
    show(
        result,
        values["as_json"],
        lambda data: say(f"key {data.get('key_name', key)} {'blocked' if blocked else 'unblocked'}"),
    )


add_create(
    app,
    KEY,
    "Issue a key; its secret is printed once and never shown again.",
    extras=[SECRET],
    render=_render_created,
    action="generate",
)
add_list(
    app,
    KEY,
    "List keys with their budget windows.",
    table_of(LIST_COLUMNS, "no keys", key="keys"),
    filters=LIST_FILTERS,
    query={"return_full_object": "true"},
)
add_info(
    app,
    KEY,
    "Show one key: owner, limits and the spend of every budget window.",
    lambda data: KEY.show(data.get("info", {})),
)
add_update(app, KEY, "Change a key; only the options given are changed.")
command(
    app,
    "block",
    "Block a key: its requests are refused (401) until it is unblocked.",
    [KEY.id_parameter],
    partial(_set_blocked, True),
)
command(app, "unblock", "Unblock a key.", [KEY.id_parameter], partial(_set_blocked, False))
add_delete(
    app,
    KEY,
    "Delete keys (their spend records stay in the ledger).",
    many=parameter("keys", KeysArgument),
    question=lambda keys: f"delete {len(keys)} key(s)?",
    done=lambda _, data: f"deleted {len(data.get('deleted_keys', []))} key(s)",
)
add_reset_spend(app, KEY, "Set a key's spend in one budget window (an audited adjustment, enforced at once).")
