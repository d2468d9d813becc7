"""``ledgergate teams ...``: teams, their members and budgets (/team/* of the admin API)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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
from ledgergate.cli.options import MetadataOption, ModelsOption, parse_metadata, parse_usd
from ledgergate.cli.render import Column, budget_summary, emit, field, money, say, show, table
from ledgergate.cli.spend_reset import add_reset_spend

app = typer.Typer(help="Teams: members, shared limits and the spend of their keys.", no_args_is_help=True)

Role = Literal["user", "admin"]
TeamArgument = Annotated[str, typer.Argument(metavar="TEAM_ID", help="The team's id.")]
AliasOption = Annotated[str | None, typer.Option("--alias", help="A human-readable name (team_alias).")]
OrgIdOption = Annotated[str | None, typer.Option("--organization-id", help="The organization the team is part of.")]
TagsOption = Annotated[
    list[str] | None,
    typer.Option("--tag", metavar="TAG", help="A tag charged with the spend of the team's keys (repeatable)."),
]

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


def _parse_member(spec: str) -> dict[str, Any]:
    """``alice`` or ``alice:admin``."""
    user_id, _, role = spec.partition(":")
    if not user_id or role not in ("", "user", "admin"):
        raise typer.BadParameter(
            f"{spec!r}: expected USER_ID or USER_ID:ROLE (role user or admin)", param_hint="'--member'"
        )
    return {"user_id": user_id, "role": role or "user"}


TEAM = EntityKind(
    noun="team",
    id_name="team_id",
    id_argument=TeamArgument,
    fields=(
        Field("alias", AliasOption, "team_alias"),
        Field("organization_id", OrgIdOption),
        Field("models", ModelsOption),
        Field("tags", TagsOption),
        Field("metadata", MetadataOption, parse=parse_metadata),
    ),
    detail_fields=DETAIL_FIELDS,
    title=lambda team: f"team {team.get('team_alias') or team.get('team_id')}",
)
NEW_TEAM_ID = Field(
    "team_id", Annotated[str | None, typer.Option("--team-id", help="The team's id (generated when absent).")]
)
MEMBERS = Field(
    "members",
    Annotated[
        list[str] | None,
        typer.Option("--member", metavar="USER_ID[:ROLE]", help="A member, role user (default) or admin (repeatable)."),
    ],
    "members_with_roles",
    parse=lambda specs: [_parse_member(spec) for spec in specs] if specs else None,
)
BLOCKED = Field(
    "blocked",
    Annotated[
        bool | None, typer.Option("--blocked/--unblocked", help="Block the team (its keys are refused) or unblock it.")
    ],
)
LIST_FILTERS = (
    Field(
        "organization_id", Annotated[str | None, typer.Option("--organization-id", help="Only this organization's.")]
    ),
    Field("user_id", Annotated[str | None, typer.Option("--user-id", help="Only the teams this user belongs to.")]),
)
TeamsArgument = Annotated[list[str], typer.Argument(metavar="TEAM_ID...", help="The teams to delete.")]
ADD_MEMBER = (
    TEAM.id_parameter,
    parameter("user_id", Annotated[str, typer.Argument(help="The user to add (created when unknown).")]),
    parameter("role", Annotated[Role, typer.Option("--role", help="The member's role in the team.")], "user"),
    parameter(
        "max_budget_in_team",
        Annotated[
            float | None, typer.Option("--max-budget-in-team", help="USD: the member's own limit inside the team.")
        ],
        None,
    ),
)
REMOVE_MEMBER = (TEAM.id_parameter, parameter("user_id", Annotated[str, typer.Argument(help="The member to remove.")]))


def _render_info(data: dict[str, Any]) -> None:
    TEAM.show(data.get("team_info", {}))
    memberships = data.get("team_memberships") or []
    if memberships:
        emit(table(memberships, MEMBER_COLUMNS, title="members"))
    say(f"keys: {len(data.get('keys') or [])}")


def _add_member(values: Values) -> None:
    team_id, user_id, role = values["team_id"], values["user_id"], values["role"]
    body: dict[str, Any] = {"team_id": team_id, "member": {"user_id": user_id, "role": role}}
    if values["max_budget_in_team"] is not None:
        body["max_budget_in_team"] = parse_usd(str(values["max_budget_in_team"]), "'--max-budget-in-team'")
    result = post(values, "/team/member_add", body)
    show(result, values["as_json"], lambda _: say(f"added {user_id} to team {team_id} as {role}"))


def _remove_member(values: Values) -> None:
    team_id, user_id = values["team_id"], values["user_id"]
    result = post(values, "/team/member_delete", {"team_id": team_id, "user_id": user_id})
    show(result, values["as_json"], lambda _: say(f"removed {user_id} from team {team_id}"))


add_create(app, TEAM, "Create a team.", leading_id=NEW_TEAM_ID, extras=[MEMBERS])
add_list(app, TEAM, "List teams with their budget windows.", table_of(LIST_COLUMNS, "no teams"), filters=LIST_FILTERS)
add_info(app, TEAM, "Show one team: limits, window spend, members and their in-team budgets.", _render_info)
add_update(app, TEAM, "Change a team; only the options given are changed.", extras=[BLOCKED])
add_delete(
    app,
    TEAM,
    "Delete teams with their keys and memberships (their spend records stay).",
    many=parameter("team_ids", TeamsArgument),
    question=lambda team_ids: f"delete {len(team_ids)} team(s) with their keys?",
    done=lambda team_ids, _: f"deleted team(s): {', '.join(team_ids)}",
)
command(app, "add-member", "Add a user to a team.", ADD_MEMBER, _add_member)
command(app, "remove-member", "Remove a user from a team.", REMOVE_MEMBER, _remove_member)
add_reset_spend(app, TEAM, "Set a team's spend in one budget window (an audited adjustment, enforced at once).")
