"""The CLI at 80 columns (``COLUMNS=80``): no cell is split across lines, no non-zero amount is shown as
``$0.00`` or cut to ``$0.0``, keys appear under their alias, and ``--json`` is unchanged (issue 11)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from ledgergate.cli.fit import FitColumn, fit_widths
from ledgergate.cli.render import Column, emit, field, money, table, usd
from tests.api.cli.conftest import run_cli
from tests.support.gateway import FLAT_MODEL, MASTER_KEY, GatewayServer

WIDTH = 80
TOKEN = "70136710733e2ca5843ca0ea4c268ee9e54c7ced515487cc882000f70e337771"
ROWS: list[dict[str, Any]] = [
    {"token": TOKEN, "alias": "bob-the-very-long-alias-name", "spend": 0.0000306, "max_budget": 0.5},
    {"token": "1b9675a5cb29f4695b", "alias": "ci", "spend": 12345.678901234, "max_budget": None},
]
COLUMNS: list[Column] = [
    ("token", field("token")),
    ("alias", field("alias")),
    ("spend", money("spend")),
    ("max budget", money("max_budget")),
]


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _assert_whole_on_one_line(output: str, cells: list[str]) -> None:
    """Every cell appears unbroken on some line, and no line is wider than the terminal."""
    lines = _lines(output)
    assert all(len(line.rstrip()) <= WIDTH for line in lines), [line for line in lines if len(line.rstrip()) > WIDTH]
    for cell in cells:
        assert any(cell in line for line in lines), (cell, output)


def test_usd_keeps_the_significant_digits_of_small_amounts() -> None:
    """A non-zero spend never reads as $0.00: every nano-USD digit that is not a trailing zero is shown."""
    assert usd(0.0000306) == "$0.0000306"
    assert usd(0.000000001) == "$0.000000001"
    assert usd(0.5) == "$0.50"
    assert usd(12345.678901234) == "$12,345.678901234"
    assert usd(0) == "$0.00"


def test_table_at_80_columns_never_splits_a_token_or_an_amount(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: rich folded the 64-character hash over two lines and cropped '$0.0000306' to '$0.0' at 80
    columns. Now every cell is whole on one line (as a record block when no table fits)."""
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    emit(table(ROWS, COLUMNS))
    output = capsys.readouterr().out
    _assert_whole_on_one_line(output, [TOKEN, "bob-the-very-long-alias-name", "$0.0000306", "$12,345.678901234"])
    assert "$0.00 " not in output and "$0.0\n" not in output


def test_a_table_that_fits_stays_a_table_and_wraps_text_only_at_spaces(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Narrow rows keep the table layout; a long free-text cell wraps between words, never inside one."""
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    words = "supercalifragilistic " * 6
    rows = [{"name": "team-a", "about": words.strip(), "spend": 0.000042}]
    emit(table(rows, [("name", field("name")), ("about", field("about")), ("spend", money("spend"))]))
    output = capsys.readouterr().out
    assert "─" in output  # still a table (the header rule)
    _assert_whole_on_one_line(output, ["team-a", "$0.000042"])
    assert sum(line.count("supercalifragilistic") for line in _lines(output)) == 6


def test_fit_widths_refuses_rather_than_splitting_a_word() -> None:
    """When the unbreakable words alone are wider than the terminal there is no table width (records instead)."""
    columns = [FitColumn("token", [TOKEN], atomic=True), FitColumn("other", ["x" * 20], atomic=False)]
    assert fit_widths(columns, WIDTH) is None
    assert fit_widths(columns, 200) == [64, 20]


def _narrow(*args: str, gateway: GatewayServer, columns: str = str(WIDTH)) -> str:
    env = {"LEDGERGATE_URL": gateway.base_url, "LEDGERGATE_MASTER_KEY": MASTER_KEY, "COLUMNS": columns}
    result = run_cli(*args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_key_commands_at_80_columns_show_whole_tokens_alias_and_small_spend(gateway: GatewayServer) -> None:
    """keys list / keys info / spend logs / spend report at COLUMNS=80 after two cheap requests: the hash,
    the alias and the exact small spend each sit whole on a line; the spend report and logs name the key by
    its alias; --json output is byte-for-byte the same at 80 and at 250 columns."""
    alias = f"narrow-{uuid.uuid4().hex[:8]}"
    created = json.loads(_narrow("keys", "create", "--alias", alias, "--window", "1h=0.5", "--json", gateway=gateway))
    for _ in range(2):
        body = {"model": FLAT_MODEL, "messages": [{"role": "user", "content": "go"}], "max_tokens": 4}
        response = httpx.post(
            f"{gateway.base_url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {created['key']}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    info = json.loads(_narrow("keys", "info", created["token"], "--json", gateway=gateway))["info"]
    spend = usd(info["budget_limits"][0]["spend"])
    assert spend not in ("$0.00", "-") and len(spend) > len("$0.00")
    token = created["token"]
    _assert_whole_on_one_line(_narrow("keys", "list", "--alias", alias, gateway=gateway), [token, alias, spend])
    _assert_whole_on_one_line(_narrow("keys", "info", token, gateway=gateway), [token, alias, spend])
    logs = _narrow("spend", "logs", "--for-key", token, gateway=gateway)
    _assert_whole_on_one_line(logs, [alias])
    report = _narrow("spend", "report", "--for-key", token, gateway=gateway)
    _assert_whole_on_one_line(report, [alias, spend])
    for command in (["keys", "list", "--alias", alias], ["spend", "logs", "--for-key", token]):
        narrow_json = _narrow(*command, "--json", gateway=gateway)
        wide_json = _narrow(*command, "--json", gateway=gateway, columns="250")
        assert narrow_json == wide_json


def test_keys_sharing_an_alias_stay_apart_in_the_spend_report(gateway: GatewayServer) -> None:
    """Two keys with the same alias are two rows with different labels (alias plus token prefix), never two
    rows that read as the same key."""
    alias = f"shared-{uuid.uuid4().hex[:8]}"
    tokens = []
    for _ in range(2):
        created = json.loads(_narrow("keys", "create", "--alias", alias, "--json", gateway=gateway))
        body = {"model": FLAT_MODEL, "messages": [{"role": "user", "content": "go"}], "max_tokens": 4}
        response = httpx.post(
            f"{gateway.base_url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {created['key']}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        tokens.append(created["token"])
    report = _narrow("spend", "report", gateway=gateway)
    for token in tokens:
        _assert_whole_on_one_line(report, [f"{alias} ({token[:8]})"])
