"""Commands that need no gateway: ``db upgrade`` on a real SQLite file and ``config check`` on a config file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml

from tests.api.cli.conftest import run_cli

SAMPLE_CONFIG = {
    "model_list": [
        {
            "model_name": "house-model",
            "litellm_params": {"model": "openai/house", "api_base": "http://127.0.0.1:9/v1", "api_key": "x"},
            "model_info": {
                "input_cost_per_token": 1.5e-6,
                "output_cost_per_token": 6e-6,
                "cache_read_input_token_cost": 1e-7,
            },
        },
        {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "x"}},
    ],
    "general_settings": {"master_key": "sk-x", "database_url": "postgresql://u:secret@db/lg"},
}


def _tables(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def test_db_upgrade_creates_schema_once(tmp_path: Path) -> None:
    """The first run applies the migrations to an empty SQLite file; the second finds nothing to do."""
    db_path = tmp_path / "lg.db"
    first = run_cli("db", "upgrade", "--database-url", f"sqlite:///{db_path}")
    assert first.exit_code == 0, first.output
    assert "schema upgraded from revision (empty database)" in first.stdout
    assert "alembic_version" in _tables(db_path) and len(_tables(db_path)) > 2
    second = run_cli("db", "upgrade", env={"LEDGERGATE_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}"})
    assert second.exit_code == 0, second.output
    assert "nothing to do" in second.stdout


def test_db_upgrade_unreachable_database_is_one_error_line(tmp_path: Path) -> None:
    """A database that cannot be opened is reported with its URL (password hidden), exit code 1."""
    result = run_cli("db", "upgrade", "--database-url", "postgresql://u:hunter2@127.0.0.1:1/x")
    assert result.exit_code == 1
    assert "postgresql+asyncpg://u:***@127.0.0.1:1/x" in result.stderr
    assert "hunter2" not in result.output


def test_config_check_prints_each_deployment_price(tmp_path: Path) -> None:
    """Configured prices and catalogue prices both appear per deployment, in USD per million tokens; --json
    gives the exact integer rates."""
    config = tmp_path / "ledgergate.yaml"
    config.write_text(yaml.safe_dump(SAMPLE_CONFIG), encoding="utf-8")
    result = run_cli("config", "check", str(config))
    assert result.exit_code == 0, result.output
    house = next(line for line in result.stdout.splitlines() if "house-model" in line)
    assert "openai/house" in house and "input $1.50" in house
    assert "output $6.00" in result.stdout and "cache read $0.10" in result.stdout
    assert "gpt-4o-mini" in result.stdout and "is valid: 2 deployment(s)" in result.stdout
    assert "secret" not in result.stdout  # the database password is hidden
    raw = json.loads(run_cli("config", "check", str(config), "--json").stdout)
    prices = {row["model_name"]: row for row in raw["deployments"]}
    assert prices["house-model"]["input_nanos_per_mtok"] == 1_500_000_000
    assert prices["house-model"]["cache_read_nanos_per_mtok"] == 100_000_000


def test_config_check_invalid_file_exits_2_naming_it(tmp_path: Path) -> None:
    """An invalid config is one ``configuration error`` naming the file; the old ``config-check`` spelling
    behaves the same."""
    config = tmp_path / "bad.yaml"
    config.write_text("model_list: 3\n", encoding="utf-8")
    for command in (["config", "check"], ["config-check"]):
        result = run_cli(*command, str(config))
        assert result.exit_code == 2
        assert result.stderr.startswith(f"configuration error: {config}: model_list"), result.stderr
