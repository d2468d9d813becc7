"""``ledgergate users ...``: internal users, the people who hold keys (/user/* of the admin API)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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
from ledgergate.cli.render import (
    Column,
    JsonOption,
    budget_summary,
    detail,
    emit,
    field,
    money,
    note,
    print_table,
    say,
    show,
    table,
)
from ledgergate.cli.spend_reset import ResetReasonOption, ResetToOption, ResetWindowOption, reset_spend

app = typer.Typer(help="Users: people who hold keys, with personal budgets.", no_args_is_help=True)

UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
UserArgument = Annotated[str, typer.Argument(metavar="USER_ID", help="The user's id.")]
AliasOption = Annotated[str | None, typer.Option("--alias", help="A human-readable name (user_alias).")]
EmailOption = Annotated[str | None, typer.Option("--email", help="The user's e-mail address.")]
RoleOption = Annotated[UserRole | None, typer.Option("--role", help="What the user may do on the admin API.")]
UNSETTABLE = BUDGET_UNSETTABLE | {"user_alias", "user_email", "models", "metadata"}

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


def _user_fields(
    alias: str | None, email: str | None, role: str | None, models: list[str] | None, metadata: str | None
) -> dict[str, Any]:
    return given(
        {
            "user_alias": alias,
            "user_email": email,
            "user_role": role,
            "models": models,
            "metadata": parse_metadata(metadata),
        }
    )


def _show_user(user: dict[str, Any]) -> None:
    detail(user, DETAIL_FIELDS, title=f"user {user.get('user_id')}")


@app.command()
def create(
    user_id: Annotated[str | None, typer.Option("--user-id", help="The user's id (generated when absent).")] = None,
    alias: AliasOption = None,
    email: EmailOption = None,
    role: RoleOption = None,
    models: ModelsOption = None,
    metadata: MetadataOption = None,
    teams: Annotated[
        list[str] | None, typer.Option("--team", metavar="TEAM_ID", help="A team to join as 'user' (repeatable).")
    ] = None,
    with_key: Annotated[bool, typer.Option("--with-key/--no-key", help="Also issue a personal key.")] = True,
    key_alias: Annotated[str | None, typer.Option("--key-alias", help="Alias of the personal key.")] = None,
    max_budget: MaxBudgetOption = None,
    budget_duration: BudgetDurationOption = None,
    window: WindowOption = None,
    soft_budget: SoftBudgetOption = None,
    budget_id: BudgetIdOption = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user (and, by default, a personal key whose secret is printed once)."""
    body = _user_fields(alias, email, role, models, metadata)
    body |= budget_fields(max_budget, budget_duration, window, soft_budget, budget_id)
    body |= given({"user_id": user_id, "teams": teams, "key_alias": key_alias})
    body["auto_create_key"] = with_key
    with admin_client(url, admin_key) as client:
        result = client.post("/user/new", body)

    def render(data: dict[str, Any]) -> None:
        _show_user(data)
        if data.get("key"):
            say(f"personal key secret: {data['key']}")
            note("[yellow]store the secret now: the gateway keeps only its hash[/yellow]")

    show(result, as_json, render)


@app.command("list")
def list_users(
    role: RoleOption = None,
    page: Annotated[int, typer.Option(min=1, help="Page number, from 1.")] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=1000, help="Users per page.")] = 25,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List users with their budget windows."""
    with admin_client(url, admin_key) as client:
        result = client.get("/user/list", {"role": role, "page": page, "page_size": page_size})

    def render(data: dict[str, Any]) -> None:
        print_table(data.get("users", []), LIST_COLUMNS, empty="no users")
        note(f"page {data.get('page')} of {data.get('total_pages')} ({data.get('total')} users)")

    show(result, as_json, render)


@app.command()
def info(
    user_id: UserArgument,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one user: limits, window spend, teams and keys."""
    with admin_client(url, admin_key) as client:
        result = client.get("/user/info", {"user_id": user_id})

    def render(data: dict[str, Any]) -> None:
        _show_user(data.get("user_info", {}))
        keys = data.get("keys") or []
        if keys:
            emit(table(keys, KEY_COLUMNS, title="keys"))

    show(result, as_json, render)


@app.command()
def update(
    user_id: UserArgument,
    alias: AliasOption = None,
    email: EmailOption = None,
    role: RoleOption = None,
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
    """Change a user; only the options given are changed."""
    body = _user_fields(alias, email, role, models, metadata)
    body |= budget_fields(max_budget, budget_duration, window, soft_budget, budget_id)
    body = with_unset(body, unset, UNSETTABLE)
    with admin_client(url, admin_key) as client:
        result = client.post("/user/update", {"user_id": user_id, **body})
    show(result, as_json, _show_user)


@app.command()
def delete(
    user_ids: Annotated[list[str], typer.Argument(metavar="USER_ID...", help="The users to delete.")],
    yes: YesOption = False,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete users with their keys and team memberships (their spend records stay)."""
    confirm(f"delete {len(user_ids)} user(s) with their keys?", yes)
    with admin_client(url, admin_key) as client:
        result = client.post("/user/delete", {"user_ids": user_ids})
    show(result, as_json, lambda _: say(f"deleted user(s): {', '.join(user_ids)}"))


@app.command("reset-spend")
def reset_spend_command(
    user_id: UserArgument,
    reset_to: ResetToOption,
    window: ResetWindowOption = None,
    reason: ResetReasonOption = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a user's personal spend in one budget window (an audited adjustment, enforced at once)."""
    reset_spend(f"/user/{segment(user_id)}/reset_spend", reset_to, window, reason, url, admin_key, as_json)
