"""The ``ledgergate`` command: ``serve`` runs the gateway; the other groups administer a running one."""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ledgergate import __version__
from ledgergate.cli import budgets, config_cmd, db, keys, spend, tags, teams, users
from ledgergate.cli.config_cmd import load_or_exit
from ledgergate.cli.listen_check import CannotListen, ensure_can_listen

EPILOG = """\
[bold]Examples[/bold]

  ledgergate serve --config ledgergate.yaml --port 4000
  export LEDGERGATE_URL=http://127.0.0.1:4000 LEDGERGATE_MASTER_KEY=sk-master
  ledgergate keys create --alias ci --max-budget 10 --budget-duration 30d --window 1h=0.5
  ledgergate keys list --json
  ledgergate keys reset-spend sk-... --to 0 --window 1h --reason "refund"
  ledgergate teams add-member team-a alice --role admin
  ledgergate spend logs --team-id team-a --start 2026-01-01
  ledgergate db upgrade --database-url postgresql://user:password@db/ledgergate
  ledgergate config check ledgergate.yaml

Admin commands talk to a running gateway: --url (env LEDGERGATE_URL, default http://127.0.0.1:4000) and \
--key (env LEDGERGATE_MASTER_KEY or LEDGERGATE_API_KEY). They print a table, or the gateway's raw JSON \
with --json; an error is one red line on stderr and exit code 1.
"""

app = typer.Typer(
    help="ledgergate: an OpenAI-compatible LLM gateway with exact, enforced budgets.",
    epilog=EPILOG,
    no_args_is_help=True,
)
console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ledgergate {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    pass


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="LiteLLM-style YAML config")] = None,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 4000,
    demo: Annotated[bool, typer.Option("--demo", help="serve a built-in mock model (works offline)")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="worker processes sharing the port; more than 1 needs redis_url and a PostgreSQL database_url",
        ),
    ] = 1,
) -> None:
    """Run the gateway."""
    import uvicorn

    from ledgergate.app import DEMO_UPSTREAM_PREFIX, create_app
    from ledgergate.container import build_container

    gateway_config = load_or_exit(config, demo)
    try:
        ensure_can_listen(host, port)
    except CannotListen as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from exc
    if gateway_config.settings.master_key is None:
        if not demo:
            console.print("[yellow]no master_key configured: the admin API refuses every call[/yellow]")
        else:
            master_key = "sk-demo-" + secrets.token_urlsafe(12)
            settings = dataclasses.replace(gateway_config.settings, master_key=master_key)
            gateway_config = dataclasses.replace(gateway_config, settings=settings)
            console.print(f"demo master key: [bold]{master_key}[/bold]")
    loopback = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    demo_base_url = f"http://{loopback}:{port}{DEMO_UPSTREAM_PREFIX}/v1" if demo else None
    settings = gateway_config.settings
    if workers > 1 and (settings.redis_url is None or not settings.database_url.startswith("postgresql")):
        # In-process counters and the one SQLite writer cannot be shared between processes (docs/benchmarks.md).
        console.print(
            f"[red]--workers {workers} needs redis_url and a PostgreSQL database_url: budget counters must be "
            "shared by every process (the SQLite setup runs as one process)[/red]"
        )
        raise typer.Exit(2)
    # the password of the database URL never reaches the terminal (or the log it is captured in)
    database = escape(config_cmd.database_for_display(settings.database_url))
    console.print(f"ledgergate listening on http://{host}:{port} (database: {database})", soft_wrap=True)
    # No proxy-headers middleware (nothing reads the client address) and no "server: uvicorn" header: both cost
    # work on every request.
    options = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "log_level": "warning",
        "proxy_headers": False,
        "server_header": False,
    }
    if workers > 1:
        from ledgergate.cli import worker_app

        os.environ[worker_app.CONFIG_PATH_ENV] = str(config) if config is not None else ""
        os.environ[worker_app.DEMO_BASE_URL_ENV] = demo_base_url or ""
        if demo and settings.master_key:
            os.environ["LEDGERGATE_MASTER_KEY"] = settings.master_key  # the key printed above, in every worker
        factory_path = "ledgergate.cli.worker_app:app_from_environment"
        uvicorn.run(factory_path, factory=True, workers=workers, access_log=False, **options)  # type: ignore[arg-type]
        return

    async def factory():  # type: ignore[no-untyped-def]
        return await build_container(gateway_config, demo_base_url=demo_base_url)

    uvicorn.run(create_app(factory, demo=demo), access_log=False, **options)  # type: ignore[arg-type]


@app.command("config-check", hidden=True)
def config_check(config: config_cmd.ConfigArgument, as_json: config_cmd.ConfigJsonOption = False) -> None:
    """Validate a config file and print each deployment's resolved prices (alias of `config check`)."""
    config_cmd.check_config(config, as_json)


app.add_typer(keys.app, name="keys")
app.add_typer(teams.app, name="teams")
app.add_typer(users.app, name="users")
app.add_typer(tags.app, name="tags")
app.add_typer(budgets.app, name="budgets")
app.add_typer(spend.app, name="spend")
app.add_typer(db.app, name="db")
app.add_typer(config_cmd.app, name="config")


if __name__ == "__main__":
    app()
