"""How the admin commands find the gateway and report failing to: one red line, exit code 1."""

from __future__ import annotations

import json
import socket

from tests.api.cli.conftest import run_cli
from tests.support.gateway import MASTER_KEY, GatewayServer


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_cli_unreachable_gateway_names_the_url(gateway: GatewayServer) -> None:
    """A refused connection says which URL failed (not a traceback), exit code 1."""
    url = f"http://127.0.0.1:{_unused_port()}"
    result = run_cli("keys", "list", "--url", url, "--key", MASTER_KEY)
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot reach the gateway at {url}/key/list"), line


def test_cli_without_key_fails_before_calling() -> None:
    """No --key and no env key is a clear error naming both ways to give one."""
    result = run_cli("teams", "list")
    assert result.exit_code == 1
    assert "--key" in result.stderr and "LEDGERGATE_MASTER_KEY" in result.stderr


def test_cli_connection_from_options_or_env(gateway: GatewayServer) -> None:
    """--url/--key work with no environment at all; LEDGERGATE_API_KEY is the fallback after the master key."""
    by_option = run_cli("keys", "list", "--json", "--url", gateway.base_url, "--key", MASTER_KEY)
    assert by_option.exit_code == 0, by_option.output
    assert "keys" in json.loads(by_option.stdout)
    by_env = run_cli(
        "keys", "list", "--json", env={"LEDGERGATE_URL": gateway.base_url, "LEDGERGATE_API_KEY": MASTER_KEY}
    )
    assert by_env.exit_code == 0, by_env.output


def test_cli_wrong_key_reports_401(gateway: GatewayServer) -> None:
    """An authentication failure is reported with its status and the gateway's message."""
    result = run_cli("budgets", "list", "--url", gateway.base_url, "--key", "sk-wrong")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: HTTP 401 authentication_error:"), result.stderr
