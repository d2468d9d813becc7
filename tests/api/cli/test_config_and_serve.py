"""``config check`` and ``serve`` report a whole config at once and refuse a port they cannot use, before
saying they listen (issue 11: the newcomer's path)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.api.cli.conftest import run_cli

BROKEN_CONFIG = """
general_settings: {timezone: Mars/Olympus, budget_mode: lax}
model_list:
  - {model_name: a, litellm_params: {model: opneai/gpt-4o}}
  - {model_name: b, litellm_params: {model: azure/prod, api_base: https://acme.openai.azure.com}}
"""
WARNED_CONFIG = """
router_settings: {routing_strategy: simple-shuffle}
litellm_settings: {num_retries: 2}
model_list:
  - model_name: a
    litellm_params: {model: openai/a, api_base: https://h/v1, api_version: "2024-06-01"}
    model_info: {input_cost_per_token: 0, output_cost_per_token: 0}
"""
SERVE_TIMEOUT_S = 60


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_check_lists_every_problem_not_only_the_first(tmp_path: Path) -> None:
    """Four problems (bad zone, bad mode, unknown provider prefix, Azure without native support) are all on
    stderr in one run, exit code 2."""
    config = _write(tmp_path, BROKEN_CONFIG)
    result = run_cli("config", "check", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"configuration error: {config}: 4 problems:"), result.stderr
    for expected in (
        "general_settings.timezone",
        "general_settings.budget_mode",
        "unknown provider prefix 'opneai'",
        "provider 'azure' needs native support (coming)",
    ):
        assert expected in result.stderr, (expected, result.stderr)


def test_config_check_json_of_an_invalid_config_lists_the_problems(tmp_path: Path) -> None:
    """--json prints ``valid: false`` and every problem on stdout, so a script need not parse stderr."""
    config = _write(tmp_path, BROKEN_CONFIG)
    result = run_cli("config", "check", str(config), "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False and len(report["problems"]) == 4
    assert all(problem.startswith(f"{config}: ") for problem in report["problems"])


def test_config_check_warns_about_every_ignored_key(tmp_path: Path) -> None:
    """A valid config with keys ledgergate would ignore passes (exit 0) with one warning per key on stderr,
    and the same warnings in --json."""
    config = _write(tmp_path, WARNED_CONFIG)
    result = run_cli("config", "check", str(config))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3, result.stderr
    for key in ("router_settings", "litellm_settings.num_retries", "litellm_params.api_version"):
        assert any(key in warning for warning in warnings), (key, warnings)
    report = json.loads(run_cli("config", "check", str(config), "--json").stdout)
    assert len(report["warnings"]) == 3 and report["valid"] is True


def test_serve_with_a_broken_config_lists_every_problem(tmp_path: Path) -> None:
    """serve refuses the same config with the same full list, exit code 2, and never says it listens."""
    config = _write(tmp_path, BROKEN_CONFIG)
    result = run_cli("serve", "--config", str(config), "--port", "1")
    assert result.exit_code == 2
    assert "4 problems" in result.stderr and "listening" not in result.output


def test_serve_on_a_port_in_use_fails_before_listening_naming_the_port(tmp_path: Path) -> None:
    """Before: serve printed "listening" and uvicorn then failed with Errno 98. Now: one red line naming the
    port and what to do, non-zero exit, no "listening" line (a real process, so a regression cannot hang the
    test in-process)."""
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "LEDGERGATE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
        process = subprocess.run(
            [sys.executable, "-m", "ledgergate.cli.main", "serve", "--demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=SERVE_TIMEOUT_S,
            env=env,
            cwd=tmp_path,
            check=False,
        )
    assert process.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in process.stderr, process.stderr
    assert f"--port {port + 1}" in process.stderr
    assert "ledgergate listening on" not in process.stderr + process.stdout
    assert "demo master key" not in process.stderr


def test_serve_on_an_address_of_another_machine_is_refused(tmp_path: Path) -> None:
    """--host with an address this machine does not have fails the same way, naming it."""
    result = run_cli("serve", "--demo", "--host", "203.0.113.7", "--port", "4000")
    assert result.exit_code == 1
    assert "203.0.113.7 is not an address of this machine" in result.stderr
    assert "ledgergate listening on" not in result.output


def test_serve_never_prints_the_database_password(tmp_path: Path) -> None:
    """Before: the "listening" line printed the database URL with its password (into every captured log).
    Now it shows ``u:***@``; the unreachable database then stops the process (non-zero exit)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "NO_COLOR": "1", "LEDGERGATE_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:1/x"}
    process = subprocess.run(
        [sys.executable, "-m", "ledgergate.cli.main", "serve", "--demo", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=SERVE_TIMEOUT_S,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    output = process.stdout + process.stderr
    assert process.returncode != 0
    assert "ledgergate listening on" in output and "postgresql+asyncpg://u:***@127.0.0.1:1/x" in output
    assert "hunter2" not in output
