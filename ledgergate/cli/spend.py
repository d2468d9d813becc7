"""``ledgergate spend ...``: what was charged, read from the ledger (/spend/* of the admin API)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer

from ledgergate.cli.client import DEFAULT_URL, AdminClient, KeyOption, UrlOption, admin_client
from ledgergate.cli.render import Column, JsonOption, field, money, note, print_table, say, show, usd_from_nanos

app = typer.Typer(help="Spend: charged requests from the ledger.", no_args_is_help=True)

FILTER_PANEL = "Filters"
KEY_LABEL = "_label"  # how a row's key (or entity) is shown: its alias where it has one
ALIAS_LOOKUP_SIZE = 1000
SHARED_ALIAS_PREFIX = 8  # token characters that tell apart keys with the same alias


def key_aliases(client: AdminClient) -> dict[str, str]:
    """token hash -> the label of a key with an alias: the alias, or ``alias (token prefix)`` when several keys
    share it (so two keys never read as one). Best effort: empty when the caller may not list keys."""
    listing = client.get_or_none("/key/list", {"return_full_object": "true", "size": ALIAS_LOOKUP_SIZE})
    keys = listing.get("keys") if isinstance(listing, dict) else None
    aliased = {
        str(key["token"]): str(key["key_alias"])
        for key in keys or []
        if isinstance(key, dict) and key.get("token") and key.get("key_alias")
    }
    shared = Counter(aliased.values())
    return {
        token: alias if shared[alias] == 1 else f"{alias} ({token[:SHARED_ALIAS_PREFIX]})"
        for token, alias in aliased.items()
    }


def _labelled(rows: list[dict[str, Any]], id_field: str, aliases: dict[str, str], width: int | None) -> list[Any]:
    """Rows with ``KEY_LABEL``: the alias of the key (grouping its rows under one readable name), else the id
    (the token cut to ``width`` characters, a prefix ``--for-key`` does not take, when ``width`` is given)."""
    labelled = []
    for row in rows:
        ident = str(row.get(id_field) or "-")
        label = aliases.get(ident) or (ident[:width] if width else ident)
        labelled.append({**row, KEY_LABEL: label})
    return labelled


LOG_COLUMNS: list[Column] = [
    ("time", lambda row: str(row.get("startTime") or "-").replace("T", " ").removesuffix("Z")),
    ("request_id", field("request_id")),
    ("model", field("model")),
    ("key", field(KEY_LABEL)),
    ("user", field("user_id")),
    ("team", field("team_id")),
    ("tags", field("request_tags")),
    ("tokens in/out", lambda row: f"{row.get('prompt_tokens', 0)}/{row.get('completion_tokens', 0)}"),
    ("spend", money("spend")),
    ("status", field("status")),
]


def _filter(flag: str, text: str) -> Any:
    return typer.Option(flag, help=text, rich_help_panel=FILTER_PANEL)


@app.command()
def logs(
    for_key: Annotated[str | None, _filter("--for-key", "Only requests made with this key (secret or token).")] = None,
    user_id: Annotated[str | None, _filter("--user-id", "Only this user's requests.")] = None,
    team_id: Annotated[str | None, _filter("--team-id", "Only this team's requests.")] = None,
    organization_id: Annotated[str | None, _filter("--organization-id", "Only this organization's.")] = None,
    customer: Annotated[str | None, _filter("--customer", "Only this end user's (the request's `user`).")] = None,
    tag: Annotated[str | None, _filter("--tag", "Only requests carrying this tag.")] = None,
    model: Annotated[str | None, _filter("--model", "Only this public model name.")] = None,
    start: Annotated[str | None, _filter("--start", "From this date (YYYY-MM-DD) or ISO-8601 instant.")] = None,
    end: Annotated[str | None, _filter("--end", "Until this date or ISO-8601 instant.")] = None,
    page: Annotated[int, typer.Option(min=1, help="Page number, from 1.")] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=1000, help="Rows per page.")] = 100,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List charged requests, newest first, with tokens and exact cost."""
    params = {
        "api_key": for_key,
        "user_id": user_id,
        "team_id": team_id,
        "organization_id": organization_id,
        "customer": customer,
        "tag": tag,
        "model": model,
        "start_date": start,
        "end_date": end,
        "page": page,
        "page_size": page_size,
    }
    with admin_client(url, admin_key) as client:
        result = client.get("/spend/logs", params)
        aliases = {} if as_json else key_aliases(client)

    def render(rows: list[dict[str, Any]]) -> None:
        print_table(_labelled(rows, "api_key", aliases, 12), LOG_COLUMNS, empty="no matching requests")
        if rows:
            total_nanos = sum(int(row.get("cost_nanos") or 0) for row in rows)
            say(f"{len(rows)} request(s) on this page, {usd_from_nanos(total_nanos)} in total")
            if len(rows) == page_size:
                note(f"more may follow: --page {page + 1}")

    show(result, as_json, render)


REPORT_GROUPS = ("key", "user", "team", "team_member", "organization", "customer", "tag", "model")
REPORT_COLUMNS: list[Column] = [
    ("entity", field(KEY_LABEL)),
    ("requests", field("requests")),
    ("tokens in/out", lambda row: f"{row.get('prompt_tokens', 0)}/{row.get('completion_tokens', 0)}"),
    ("spend", money("spend")),
]
REPORT_DAY_COLUMNS: list[Column] = [("date", field("date")), *REPORT_COLUMNS]


@app.command()
def report(
    group_by: Annotated[str, typer.Option("--group-by", help=f"What to total by: {', '.join(REPORT_GROUPS)}.")] = "key",
    start: Annotated[str | None, _filter("--start", "First day (YYYY-MM-DD); default 30 days ago.")] = None,
    end: Annotated[str | None, _filter("--end", "Last day, inclusive (YYYY-MM-DD); default today.")] = None,
    for_key: Annotated[str | None, _filter("--for-key", "Only requests made with this key (secret or token).")] = None,
    team_id: Annotated[str | None, _filter("--team-id", "Only this team's requests.")] = None,
    tag: Annotated[str | None, _filter("--tag", "Only requests carrying this tag.")] = None,
    model: Annotated[str | None, _filter("--model", "Only this public model name.")] = None,
    daily: Annotated[bool, typer.Option("--daily", help="One row per day and entity instead of totals.")] = False,
    url: UrlOption = DEFAULT_URL,
    admin_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Total spend per entity (or model) over a range of days, from the ledger (exact to the nano)."""
    if group_by not in REPORT_GROUPS:
        raise typer.BadParameter(f"must be one of {', '.join(REPORT_GROUPS)}", param_hint="--group-by")
    params = {
        "group_by": group_by,
        "start_date": start,
        "end_date": end,
        "api_key": for_key,
        "team_id": team_id,
        "tag": tag,
        "model": model,
    }
    with admin_client(url, admin_key) as client:
        result = client.get("/spend/report", params)
        aliases = key_aliases(client) if group_by == "key" and not as_json else {}

    def render(document: dict[str, Any]) -> None:
        rows = document.get("rows", []) if daily else document.get("entities", [])
        columns = REPORT_DAY_COLUMNS if daily else REPORT_COLUMNS
        print_table(_labelled(rows, "entity_id", aliases, None), columns, empty="no spend in this range")
        total = document.get("total") or {}
        say(
            f"{document.get('start_date')} .. {document.get('end_date')} ({document.get('timezone')}): "
            f"{total.get('requests', 0)} request(s), {usd_from_nanos(int(total.get('cost_nanos') or 0))} in total"
        )

    show(result, as_json, render)
