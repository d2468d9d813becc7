"""``ledgergate keys ...``: virtual keys (/key/* of the admin API)."""

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
from ledgergate.cli.render import (
    Column,
    JsonOption,
    budget_summary,
    detail,
    field,
    note,
    print_table,
    say,
    show,
)
from ledgergate.cli.spend_reset import ResetReasonOption, ResetToOption, ResetWindowOption, reset_spend

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
UNSETTABLE = BUDGET_UNSETTABLE | {
    "key_alias",
    "models",
    "tags",
    "metadata",
    "duration",
    "user_id",
    "team_id",
    "organization_id",
}

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


def _key_fields(
    alias: str | None,
    models: list[str] | None,
    tags: list[str] | None,
    duration: str | None,
    user_id: str | None,
    team_id: str | None,
    organization_id: str | None,
    metadata: str | None,
) -> dict[str, Any]:
    return given(
        {
            "key_alias": alias,
            "models": models,
            "tags": tags,
            "duration": duration,
            "user_id": user_id,
            "team_id": team_id,
            "organization_id": organization_id,
            "metadata": parse_metadata(metadata),
        }
    )


def _show_key(key: dict[str, Any]) -> None:
    detail(key, DETAIL_FIELDS, title=f"key {key.get('key_alias') or key.get('key_name') or ''}".rstrip())


@app.command()
def create(
    alias: AliasOption = None,
    models: ModelsOption = None,
    tags: TagsOption = None,
    duration: DurationOption = None,
    user_id: UserIdOption = None,
    team_id: TeamIdOption = None,
    organization_id: OrgIdOption = None,
    metadata: MetadataOption = None,
    secret: Annotated[
        str | None, typer.Option("--secret", help="Use this secret (sk-...) instead of a random one.")
    ] = None,
    max_budget: MaxBudgetOption = None,
    budget_duration: BudgetDurationOption = None,
    window: WindowOption = None,
    soft_budget: SoftBudgetOption = None,
    budget_id: BudgetIdOption = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a key; its secret is printed once and never shown again."""
    body = _key_fields(alias, models, tags, duration, user_id, team_id, organization_id, metadata)
    body |= budget_fields(max_budget, budget_duration, window, soft_budget, budget_id)
    body |= given({"key": secret})
    with admin_client(url, admin_key) as client:
        key = client.post("/key/generate", body)

    def render(data: dict[str, Any]) -> None:
        _show_key(data)
        say(f"secret: {data.get('key')}")
        note("[yellow]store the secret now: the gateway keeps only its hash[/yellow]")

    show(key, as_json, render)


@app.command("list")
def list_keys(
    user_id: Annotated[str | None, typer.Option("--user-id", help="Only this user's keys.")] = None,
    team_id: Annotated[str | None, typer.Option("--team-id", help="Only this team's keys.")] = None,
    alias: Annotated[str | None, typer.Option("--alias", help="Only keys with this alias.")] = None,
    page: Annotated[int, typer.Option(min=1, help="Page number, from 1.")] = 1,
    size: Annotated[int, typer.Option(min=1, max=1000, help="Keys per page.")] = 100,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List keys with their budget windows."""
    params = {"user_id": user_id, "team_id": team_id, "key_alias": alias, "page": page, "size": size}
    with admin_client(url, admin_key) as client:
        result = client.get("/key/list", params | {"return_full_object": "true"})
    show(result, as_json, lambda data: print_table(data.get("keys", []), LIST_COLUMNS, empty="no keys"))


@app.command()
def info(
    key: KeyArgument,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one key: owner, limits and the spend of every budget window."""
    with admin_client(url, admin_key) as client:
        result = client.get("/key/info", {"key": key})
    show(result, as_json, lambda data: _show_key(data.get("info", {})))


@app.command()
def update(
    key: KeyArgument,
    alias: AliasOption = None,
    models: ModelsOption = None,
    tags: TagsOption = None,
    duration: DurationOption = None,
    user_id: UserIdOption = None,
    team_id: TeamIdOption = None,
    organization_id: OrgIdOption = None,
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
    """Change a key; only the options given are changed."""
    body = _key_fields(alias, models, tags, duration, user_id, team_id, organization_id, metadata)
    body |= budget_fields(max_budget, budget_duration, window, soft_budget, budget_id)
    body = with_unset(body, unset, UNSETTABLE)
    with admin_client(url, admin_key) as client:
        result = client.post("/key/update", {"key": key, **body})
    show(result, as_json, _show_key)


def _set_blocked(key: str, blocked: bool, url: str, admin_key: str | None, as_json: bool) -> None:
    with admin_client(url, admin_key) as client:
        result = client.post("/key/block" if blocked else "/key/unblock", {"key": key})
    show(
        result,
        as_json,
        lambda data: say(f"key {data.get('key_name', key)} {'blocked' if blocked else 'unblocked'}"),
    )


@app.command()
def block(
    key: KeyArgument,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Block a key: its requests are refused (401) until it is unblocked."""
    _set_blocked(key, True, url, admin_key, as_json)


@app.command()
def unblock(
    key: KeyArgument,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Unblock a key."""
    _set_blocked(key, False, url, admin_key, as_json)


@app.command()
def delete(
    keys: Annotated[list[str], typer.Argument(metavar="KEY...", help="Secrets or tokens of the keys to delete.")],
    yes: YesOption = False,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete keys (their spend records stay in the ledger)."""
    confirm(f"delete {len(keys)} key(s)?", yes)
    with admin_client(url, admin_key) as client:
        result = client.post("/key/delete", {"keys": keys})
    show(result, as_json, lambda data: say(f"deleted {len(data.get('deleted_keys', []))} key(s)"))


@app.command("reset-spend")
def reset_spend_command(
    key: KeyArgument,
    reset_to: ResetToOption,
    window: ResetWindowOption = None,
    reason: ResetReasonOption = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a key's spend in one budget window (an audited adjustment, enforced at once)."""
    reset_spend(f"/key/{segment(key)}/reset_spend", reset_to, window, reason, url, admin_key, as_json)
