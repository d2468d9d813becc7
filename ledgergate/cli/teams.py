"""``ledgergate teams ...``: teams, their members and budgets (/team/* of the admin API)."""

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
    parse_usd,
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
    print_table,
    say,
    show,
    table,
)
from ledgergate.cli.spend_reset import ResetReasonOption, ResetToOption, ResetWindowOption, reset_spend

app = typer.Typer(help="Teams: members, shared limits and the spend of their keys.", no_args_is_help=True)

Role = Literal["user", "admin"]
TeamArgument = Annotated[str, typer.Argument(metavar="TEAM_ID", help="The team's id.")]
AliasOption = Annotated[str | None, typer.Option("--alias", help="A human-readable name (team_alias).")]
OrgIdOption = Annotated[str | None, typer.Option("--organization-id", help="The organization the team is part of.")]
TagsOption = Annotated[
    list[str] | None,
    typer.Option("--tag", metavar="TAG", help="A tag charged with the spend of the team's keys (repeatable)."),
]
UNSETTABLE = BUDGET_UNSETTABLE | {"team_alias", "organization_id", "models", "tags", "metadata"}

LIST_COLUMNS: list[Column] = [
    ("team_id", field("team_id")),
    ("alias", field("team_alias")),
    ("organization", field("organization_id")),
    ("members", lambda team: str(len(team.get("members_with_roles") or []))),
    ("blocked", field("blocked")),
    ("budgets (spend/max)", budget_summary),
    ("lifetime spend", money("lifetime_spend")),
]
DETAIL_FIELDS: list[Column] = [
    ("team_id", field("team_id")),
    ("alias", field("team_alias")),
    ("organization", field("organization_id")),
    ("blocked", field("blocked")),
    ("models", field("models")),
    ("tags", field("tags")),
    ("budget id", field("budget_id")),
    ("metadata", field("metadata")),
    ("created", field("created_at")),
]
MEMBER_COLUMNS: list[Column] = [
    ("user_id", field("user_id")),
    ("role", field("role")),
    ("budgets in team (spend/max)", budget_summary),
    ("lifetime spend", money("lifetime_spend")),
]


def _team_fields(
    alias: str | None,
    organization_id: str | None,
    models: list[str] | None,
    tags: list[str] | None,
    metadata: str | None,
) -> dict[str, Any]:
    return given(
        {
            "team_alias": alias,
            "organization_id": organization_id,
            "models": models,
            "tags": tags,
            "metadata": parse_metadata(metadata),
        }
    )


def _parse_member(spec: str) -> dict[str, Any]:
    """``alice`` or ``alice:admin``."""
    user_id, _, role = spec.partition(":")
    if not user_id or role not in ("", "user", "admin"):
        raise typer.BadParameter(
            f"{spec!r}: expected USER_ID or USER_ID:ROLE (role user or admin)", param_hint="'--member'"
        )
    return {"user_id": user_id, "role": role or "user"}


def _show_team(team: dict[str, Any]) -> None:
    detail(team, DETAIL_FIELDS, title=f"team {team.get('team_alias') or team.get('team_id')}")


@app.command()
def create(
    team_id: Annotated[str | None, typer.Option("--team-id", help="The team's id (generated when absent).")] = None,
    alias: AliasOption = None,
    organization_id: OrgIdOption = None,
    models: ModelsOption = None,
    tags: TagsOption = None,
    metadata: MetadataOption = None,
    members: Annotated[
        list[str] | None,
        typer.Option("--member", metavar="USER_ID[:ROLE]", help="A member, role user (default) or admin (repeatable)."),
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
    """Create a team."""
    body = _team_fields(alias, organization_id, models, tags, metadata)
    body |= budget_fields(max_budget, budget_duration, window, soft_budget, budget_id)
    body |= given({"team_id": team_id})
    if members:
        body["members_with_roles"] = [_parse_member(spec) for spec in members]
    with admin_client(url, admin_key) as client:
        result = client.post("/team/new", body)
    show(result, as_json, _show_team)


@app.command("list")
def list_teams(
    organization_id: Annotated[str | None, typer.Option("--organization-id", help="Only this organization's.")] = None,
    user_id: Annotated[str | None, typer.Option("--user-id", help="Only the teams this user belongs to.")] = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List teams with their budget windows."""
    with admin_client(url, admin_key) as client:
        result = client.get("/team/list", {"organization_id": organization_id, "user_id": user_id})
    show(result, as_json, lambda data: print_table(data, LIST_COLUMNS, empty="no teams"))


@app.command()
def info(
    team_id: TeamArgument,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one team: limits, window spend, members and their in-team budgets."""
    with admin_client(url, admin_key) as client:
        result = client.get("/team/info", {"team_id": team_id})

    def render(data: dict[str, Any]) -> None:
        _show_team(data.get("team_info", {}))
        memberships = data.get("team_memberships") or []
        if memberships:
            emit(table(memberships, MEMBER_COLUMNS, title="members"))
        say(f"keys: {len(data.get('keys') or [])}")

    show(result, as_json, render)


@app.command()
def update(
    team_id: TeamArgument,
    alias: AliasOption = None,
    organization_id: OrgIdOption = None,
    models: ModelsOption = None,
    tags: TagsOption = None,
    metadata: MetadataOption = None,
    blocked: Annotated[
        bool | None, typer.Option("--blocked/--unblocked", help="Block the team (its keys are refused) or unblock it.")
    ] = None,
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
    """Change a team; only the options given are changed."""
    body = _team_fields(alias, organization_id, models, tags, metadata) | given({"blocked": blocked})
    body |= budget_fields(max_budget, budget_duration, window, soft_budget, budget_id)
    body = with_unset(body, unset, UNSETTABLE)
    with admin_client(url, admin_key) as client:
        result = client.post("/team/update", {"team_id": team_id, **body})
    show(result, as_json, _show_team)


@app.command()
def delete(
    team_ids: Annotated[list[str], typer.Argument(metavar="TEAM_ID...", help="The teams to delete.")],
    yes: YesOption = False,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete teams with their keys and memberships (their spend records stay)."""
    confirm(f"delete {len(team_ids)} team(s) with their keys?", yes)
    with admin_client(url, admin_key) as client:
        result = client.post("/team/delete", {"team_ids": team_ids})
    show(result, as_json, lambda _: say(f"deleted team(s): {', '.join(team_ids)}"))


@app.command("add-member")
def add_member(
    team_id: TeamArgument,
    user_id: Annotated[str, typer.Argument(help="The user to add (created when unknown).")],
    role: Annotated[Role, typer.Option("--role", help="The member's role in the team.")] = "user",
    max_budget_in_team: Annotated[
        float | None, typer.Option("--max-budget-in-team", help="USD: the member's own limit inside the team.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user to a team."""
    body: dict[str, Any] = {"team_id": team_id, "member": {"user_id": user_id, "role": role}}
    if max_budget_in_team is not None:
        body["max_budget_in_team"] = parse_usd(str(max_budget_in_team), "'--max-budget-in-team'")
    with admin_client(url, admin_key) as client:
        result = client.post("/team/member_add", body)
    show(result, as_json, lambda _: say(f"added {user_id} to team {team_id} as {role}"))


@app.command("remove-member")
def remove_member(
    team_id: TeamArgument,
    user_id: Annotated[str, typer.Argument(help="The member to remove.")],
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove a user from a team."""
    with admin_client(url, admin_key) as client:
        result = client.post("/team/member_delete", {"team_id": team_id, "user_id": user_id})
    show(result, as_json, lambda _: say(f"removed {user_id} from team {team_id}"))


@app.command("reset-spend")
def reset_spend_command(
    team_id: TeamArgument,
    reset_to: ResetToOption,
    window: ResetWindowOption = None,
    reason: ResetReasonOption = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a team's spend in one budget window (an audited adjustment, enforced at once)."""
    reset_spend(f"/team/{segment(team_id)}/reset_spend", reset_to, window, reason, url, admin_key, as_json)
