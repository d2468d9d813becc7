"""The ``ledgergate`` command."""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ledgergate.config import ConfigError, GatewayConfig, load_config

app = typer.Typer(
    help="ledgergate: an OpenAI-compatible LLM gateway with exact, enforced budgets.", no_args_is_help=True
)
console = Console(stderr=True)


def _load(config: Path | None, demo: bool) -> GatewayConfig:
    try:
        return load_config(config, demo=demo)
    except ConfigError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="LiteLLM-style YAML config")] = None,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 4000,
    demo: Annotated[bool, typer.Option("--demo", help="serve a built-in mock model (works offline)")] = False,
) -> None:
    """Run the gateway."""
    import uvicorn

    from ledgergate.api.app import DEMO_UPSTREAM_PREFIX, create_app
    from ledgergate.container import build_container

    gateway_config = _load(config, demo)
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

    async def factory():  # type: ignore[no-untyped-def]
        return await build_container(gateway_config, demo_base_url=demo_base_url)

    application = create_app(factory, demo=demo)
    console.print(f"ledgergate listening on http://{host}:{port} (database: {gateway_config.settings.database_url})")
    uvicorn.run(
        application, host=host, port=port, loop="uvloop", http="httptools", log_level="warning", access_log=False
    )


@app.command("config-check")
def config_check(config: Annotated[Path, typer.Argument(help="config file to validate")]) -> None:
    """Validate a config file and print each deployment's resolved prices."""
    gateway_config = _load(config, False)
    for deployment in gateway_config.deployments:
        prices = deployment.prices
        console.print(
            f"{deployment.model_name} -> {deployment.provider}/{deployment.upstream_model}: "
            f"input {prices.input_nanos_per_mtok / 1e9:g} USD/M, output {prices.output_nanos_per_mtok / 1e9:g} USD/M"
        )


if __name__ == "__main__":
    app()
