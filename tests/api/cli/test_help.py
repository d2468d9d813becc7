"""The CLI's help: complete, with examples, and docs/cli.md generated from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ledgergate.cli.docs import command_paths, render_markdown
from ledgergate.cli.main import app
from tests.api.cli.conftest import run_cli

DOCS = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def _command(root: Any, path: list[str]) -> Any:
    command = root
    for name in path:
        command = command.commands[name]
    return command


def test_cli_docs_match_help_output() -> None:
    """docs/cli.md is exactly what scripts/gen_cli_docs.py renders from the current --help (never stale)."""
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), "run: .venv/bin/python scripts/gen_cli_docs.py"


def test_cli_every_option_and_command_has_help() -> None:
    """No command, argument or option shows up in --help without an explanation."""
    missing = []
    root = typer.main.get_command(app)
    for path in command_paths(root):
        command = _command(root, path)
        if path and not (command.help or command.short_help):
            missing.append(" ".join(path))
        for param in command.params:
            if not getattr(param, "help", None):
                missing.append(f"{' '.join(path)} {param.name}")
    assert missing == []


def test_cli_top_level_help_has_examples() -> None:
    """``ledgergate --help`` lists every command group and ends with runnable examples."""
    result = run_cli("--help")
    assert result.exit_code == 0
    for group in ("serve", "keys", "teams", "users", "tags", "budgets", "spend", "db", "config"):
        assert f" {group} " in result.stdout
    assert "Examples" in result.stdout and "ledgergate keys create --alias ci" in result.stdout
