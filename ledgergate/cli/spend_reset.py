"""The ``reset-spend`` command every budgeted entity shares (POST /<entity>/<id>/reset_spend)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ledgergate.cli.client import admin_client
from ledgergate.cli.options import given
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


def reset_spend(
    path: str, reset_to: float, window: str | None, reason: str | None, url: str, key: str | None, as_json: bool
) -> None:
    body = given({"reset_to": reset_to, "budget_duration": window, "reason": reason})
    with admin_client(url, key) as client:
        result = client.post(path, body)

    def render(data: dict[str, Any]) -> None:
        say(
            f"{data.get('budget_duration') or 'lifetime'} window: spend reset from {usd(data.get('previous_spend'))}"
            f" to {usd(data.get('spend'))} of {usd(data.get('max_budget'))}"
            f" (next reset {data.get('reset_at') or 'never'}; adjustment {data.get('adjustment_id')})"
        )

    show(result, as_json, render)
