"""The ``reset-spend`` command every budgeted entity shares (POST /<entity>/<id>/reset_spend)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ledgergate.cli.entity import EntityKind, Values, command, parameter, post
from ledgergate.cli.options import given, segment
from ledgergate.cli.render import say, show, usd

ResetToOption = Annotated[
    float,
    typer.Option(
        "--to",
        help="New spend in USD: >= 0 and at most the window's current spend and its max budget.",
        show_default=False,
    ),
]
ResetWindowOption = Annotated[
    str | None,
    typer.Option("--window", metavar="DURATION", help="The window to reset, e.g. 1h (default: the primary window)."),
]
ResetReasonOption = Annotated[str | None, typer.Option("--reason", help="Why (kept in the adjustment record).")]


def _render(data: dict[str, Any]) -> None:
    say(
        f"{data.get('budget_duration') or 'lifetime'} window: spend reset from {usd(data.get('previous_spend'))}"
        f" to {usd(data.get('spend'))} of {usd(data.get('max_budget'))}"
        f" (next reset {data.get('reset_at') or 'never'}; adjustment {data.get('adjustment_id')})"
    )


def add_reset_spend(app: typer.Typer, kind: EntityKind, summary: str) -> None:
    """``reset-spend ID --to USD``: set the spend of one of the entity's budget windows."""

    def run(values: Values) -> None:
        body = given({"reset_to": values["reset_to"], "budget_duration": values["window"], "reason": values["reason"]})
        result = post(values, kind.path(f"{segment(values[kind.id_name])}/reset_spend"), body)
        show(result, values["as_json"], _render)

    options = [
        parameter("reset_to", ResetToOption),
        parameter("window", ResetWindowOption, None),
        parameter("reason", ResetReasonOption, None),
    ]
    command(app, "reset-spend", summary, [kind.id_parameter, *options], run)
