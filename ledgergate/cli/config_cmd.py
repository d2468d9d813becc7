"""``ledgergate config check``: validate a config file and show what each deployment will be charged at."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ledgergate.cli.render import (
    Column,
    emit,
    field,
    note,
    print_json,
    say,
    table,
    usd_from_nanos,
)
from ledgergate.config import ConfigError, GatewayConfig, load_config
from ledgergate.deployments import Deployment

app = typer.Typer(help="Configuration: validate a config file before deploying it.", no_args_is_help=True)

ConfigArgument = Annotated[Path, typer.Argument(metavar="FILE", help="The LiteLLM-style YAML config to validate.")]
ConfigJsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result (settings and exact prices in nano-USD) as JSON.")
]


def load_or_exit(config: Path | None, demo: bool, *, warn: bool = True) -> GatewayConfig:
    """The loaded config (its ignored keys warned about on stderr), or a red ``configuration error`` listing
    every problem with the file and rule, exit code 2."""
    try:
        gateway_config = load_config(config, demo=demo)
    except ConfigError as exc:
        note(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if warn:
        for warning in gateway_config.warnings:
            note(f"[yellow]warning:[/yellow] {escape(f'{config}: {warning}')}")
    return gateway_config


def _per_mtok(nanos_per_mtok: int | None) -> str:
    # nano-USD per million tokens read as USD per million tokens is exactly the nanos -> USD conversion
    return "-" if nanos_per_mtok is None else usd_from_nanos(nanos_per_mtok)


def deployment_row(deployment: Deployment) -> dict[str, Any]:
    prices = deployment.prices
    return {
        "model_name": deployment.model_name,
        "deployment_id": deployment.deployment_id,
        "provider": deployment.provider,
        "upstream_model": deployment.upstream_model,
        "api_base": deployment.api_base,
        "input_nanos_per_mtok": prices.input_nanos_per_mtok,
        "output_nanos_per_mtok": prices.output_nanos_per_mtok,
        "cache_read_nanos_per_mtok": prices.cache_read_nanos_per_mtok,
        "cache_write_nanos_per_mtok": prices.cache_write_nanos_per_mtok,
        "max_output_tokens": deployment.max_output_tokens,
    }


def _prices(row: Mapping[str, Any]) -> str:
    lines = [f"input {_per_mtok(row['input_nanos_per_mtok'])}", f"output {_per_mtok(row['output_nanos_per_mtok'])}"]
    for kind in ("cache_read", "cache_write"):
        if row[f"{kind}_nanos_per_mtok"] is not None:
            lines.append(f"{kind.replace('_', ' ')} {_per_mtok(row[f'{kind}_nanos_per_mtok'])}")
    return "\n".join(lines)


PRICE_COLUMNS: list[Column] = [
    ("model", field("model_name")),
    ("upstream", lambda row: f"{row['provider']}/{row['upstream_model']}"),
    ("api base", field("api_base")),
    ("USD per 1M tokens", _prices),
    ("max output tokens", field("max_output_tokens")),
]


_WRAPPED = frozenset({"upstream", "api base", "max output tokens"})


def database_for_display(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a valid URL)"


def _check_config_json(config: Path) -> None:
    """``--json``: the result on stdout, valid or not, so a script reads every problem and warning from it."""
    try:
        gateway_config = load_config(config)
    except ConfigError as exc:
        note(f"[red]configuration error:[/red] {escape(str(exc))}")
        print_json({"file": str(config), "valid": False, "problems": list(exc.problems)})
        raise typer.Exit(2) from exc
    settings = gateway_config.settings
    print_json(
        {
            "file": str(config),
            "valid": True,
            "database_url": database_for_display(settings.database_url),
            "budget_mode": settings.budget_mode,
            "master_key_set": settings.master_key is not None,
            "deployments": [deployment_row(d) for d in gateway_config.deployments],
            "warnings": list(gateway_config.warnings),
        }
    )


def check_config(config: Path, as_json: bool) -> None:
    if as_json:
        _check_config_json(config)
        return
    gateway_config = load_or_exit(config, False)
    rows = [deployment_row(d) for d in gateway_config.deployments]
    settings = gateway_config.settings
    if rows:
        emit(table(rows, PRICE_COLUMNS, title=f"{config}: resolved prices", wrap=_WRAPPED))
    else:
        note("[yellow]no deployments (model_list is empty): every LLM request would get 404[/yellow]")
    say(
        f"{config} is valid: {len(rows)} deployment(s), database {database_for_display(settings.database_url)}, "
        f"budget mode {settings.budget_mode}"
    )
    if settings.master_key is None:
        note("[yellow]no master_key configured: the admin API would refuse every call[/yellow]")


@app.command()
def check(config: ConfigArgument, as_json: ConfigJsonOption = False) -> None:
    """Validate a config file and print each deployment's resolved prices (exit code 2 when invalid)."""
    check_config(config, as_json)
