"""``ledgergate users ...``: internal users, the people who hold keys (/user/* of the admin API)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from ledgergate.cli.entity import (
    EntityKind,
    Field,
    add_create,
    add_delete,
    add_info,
    add_list,
    add_update,
    parameter,
)
from ledgergate.cli.options import MetadataOption, ModelsOption, parse_metadata
from ledgergate.cli.render import Column, budget_summary, emit, field, money, note, print_table, say, table
from ledgergate.cli.spend_reset import add_reset_spend

app = typer.Typer(help="Users: people who hold keys, with personal budgets.", no_args_is_help=True)

UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
UserArgument = Annotated[str, typer.Argument(metavar="USER_ID", help="The user's id.")]
AliasOption = Annotated[str | None, typer.Option("--alias", help="A human-readable name (user_alias).")]
EmailOption = Annotated[str | None, typer.Option("--email", help="The user's e-mail address.")]
RoleOption = Annotated[UserRole | None, typer.Option("--role", help="What the user may do on the admin API.")]

LIST_COLUMNS: list[Column] = [
    ("user_id", field("user_id")),
    ("alias", field("user_alias")),
    ("email", field("user_email")),
    ("role", field("user_role")),
    ("budgets (spend/max)", budget_summary),
    ("lifetime spend", money("lifetime_spend")),
]
DETAIL_FIELDS: list[Column] = [
    ("user_id", field("user_id")),
    ("alias", field("user_alias")),
    ("email", field("user_email")),
    ("role", field("user_role")),
    ("teams", field("teams")),
    ("models", field("models")),
    ("budget id", field("budget_id")),
    ("metadata", field("metadata")),
    ("created", field("created_at")),
]
KEY_COLUMNS: list[Column] = [
    ("token", field("token")),
    ("key", field("key_name")),
    ("alias", field("key_alias")),
    ("team", field("team_id")),
    ("budgets (spend/max)", budget_summary),
]

USER = EntityKind(
    noun="user",
    id_name="user_id",
    id_argument=UserArgument,
    fields=(
        Field("alias", AliasOption, "user_alias"),
        Field("email", EmailOption, "user_email"),
        # a user always has a role: it can be changed, never removed
        Field("role", RoleOption, "user_role", unsettable=False),
        Field("models", ModelsOption),
        Field("metadata", MetadataOption, parse=parse_metadata),
    ),
    detail_fields=DETAIL_FIELDS,
    title=lambda user: f"user {user.get('user_id')}",
)
NEW_USER_ID = Field(
    "user_id", Annotated[str | None, typer.Option("--user-id", help="The user's id (generated when absent).")]
)
CREATE_EXTRAS = (
    Field(
        "teams",
        Annotated[
            list[str] | None, typer.Option("--team", metavar="TEAM_ID", help="A team to join as 'user' (repeatable).")
        ],
    ),
    Field(
        "with_key",
        Annotated[bool, typer.Option("--with-key/--no-key", help="Also issue a personal key.")],
        "auto_create_key",
        default=True,
    ),
    Field("key_alias", Annotated[str | None, typer.Option("--key-alias", help="Alias of the personal key.")]),
)
LIST_FILTERS = (
    Field("role", RoleOption),
    Field("page", Annotated[int, typer.Option(min=1, help="Page number, from 1.")], default=1),
    Field("page_size", Annotated[int, typer.Option(min=1, max=1000, help="Users per page.")], default=25),
)
UsersArgument = Annotated[list[str], typer.Argument(metavar="USER_ID...", help="The users to delete.")]


def _render_created(data: dict[str, Any]) -> None:
    USER.show(data)
    if data.get("key"):
        say(f"personal key secret: {data['key']}")
        note("[yellow]store the secret now: the gateway keeps only its hash[/yellow]")


def _render_list(data: dict[str, Any]) -> None:
    print_table(data.get("users", []), LIST_COLUMNS, empty="no users")
    note(f"page {data.get('page')} of {data.get('total_pages')} ({data.get('total')} users)")


def _render_info(data: dict[str, Any]) -> None:
    USER.show(data.get("user_info", {}))
    keys = data.get("keys") or []
    if keys:
        emit(table(keys, KEY_COLUMNS, title="keys"))


add_create(
    app,
    USER,
    "Create a user (and, by default, a personal key whose secret is printed once).",
    leading_id=NEW_USER_ID,
    extras=CREATE_EXTRAS,
    render=_render_created,
)
add_list(app, USER, "List users with their budget windows.", _render_list, filters=LIST_FILTERS)
add_info(app, USER, "Show one user: limits, window spend, teams and keys.", _render_info)
add_update(app, USER, "Change a user; only the options given are changed.")
add_delete(
    app,
    USER,
    "Delete users with their keys and team memberships (their spend records stay).",
    many=parameter("user_ids", UsersArgument),
    question=lambda user_ids: f"delete {len(user_ids)} user(s) with their keys?",
    done=lambda user_ids, _: f"deleted user(s): {', '.join(user_ids)}",
)
add_reset_spend(
    app, USER, "Set a user's personal spend in one budget window (an audited adjustment, enforced at once)."
)
