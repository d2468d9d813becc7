"""Fixtures of the CLI tests: the real gateway of tests/support/gateway.py and a runner pointed at it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from ledgergate.cli.main import app
from tests.support.fixtures import gateway
from tests.support.gateway import MASTER_KEY, GatewayServer

__all__ = ["cli", "gateway", "run_cli"]

# Wide enough that no table cell used in an assertion is folded.
TERMINAL_COLUMNS = "250"
Cli = Callable[..., Result]


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """``ledgergate ARGS`` in-process, with the admin connection left to ``env`` (None unsets a variable)."""
    base_env: dict[str, str | None] = {
        "COLUMNS": TERMINAL_COLUMNS,
        "NO_COLOR": "1",
        "LEDGERGATE_URL": None,
        "LEDGERGATE_MASTER_KEY": None,
        "LEDGERGATE_API_KEY": None,
        "LEDGERGATE_DATABASE_URL": None,
    }
    return CliRunner().invoke(app, list(args), env={**base_env, **(env or {})}, prog_name="ledgergate")


@pytest.fixture
def cli(gateway: GatewayServer) -> Cli:
    """``cli("keys", "list")``: the CLI against the module's gateway with the master key (from the env)."""

    def invoke(*args: str) -> Result:
        return run_cli(*args, env={"LEDGERGATE_URL": gateway.base_url, "LEDGERGATE_MASTER_KEY": MASTER_KEY})

    return invoke
