"""``ledgergate keys ...`` against a real gateway: what the CLI sends is what the gateway enforces."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.api.cli.conftest import Cli
from tests.support.gateway import FLAT_MODEL, FLAT_OUTPUT_NANOS_PER_TOKEN, MASTER_KEY, GatewayServer
from tests.support.timing import HTTP_TIMEOUT_S

TOKENS = 10
REQUEST_USD = TOKENS * FLAT_OUTPUT_NANOS_PER_TOKEN / 1_000_000_000


def _alias() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


def _create(cli: Cli, *args: str) -> dict[str, Any]:
    result = cli("keys", "create", "--alias", _alias(), *args, "--json")
    assert result.exit_code == 0, result.output
    created: dict[str, Any] = json.loads(result.stdout)
    return created


def _info(gateway: GatewayServer, key: str) -> dict[str, Any]:
    """The key as the gateway has it, read over HTTP (not through the CLI under test)."""
    response = httpx.get(
        f"{gateway.base_url}/key/info", params={"key": key}, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    )
    assert response.status_code == 200, response.text
    info: dict[str, Any] = response.json()["info"]
    return info


def _chat(gateway: GatewayServer, secret: str) -> httpx.Response:
    body = {"model": FLAT_MODEL, "messages": [{"role": "user", "content": "go"}], "max_tokens": TOKENS}
    return httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=HTTP_TIMEOUT_S,
    )


def _windows(entity: dict[str, Any]) -> dict[str, float]:
    return {w["budget_duration"]: w["max_budget"] for w in entity["budget_limits"]}


def test_keys_create_sends_each_window_as_a_concurrent_budget(cli: Cli, gateway: GatewayServer) -> None:
    """Every repeated ``--window DURATION=USD`` becomes its own window on the gateway, next to the primary
    ``--max-budget/--budget-duration`` one (none dropped, none merged)."""
    created = _create(cli, "--max-budget", "1", "--budget-duration", "1d", "--window", "1h=0.5", "--window", "1w=3")
    stored = _info(gateway, created["key"])
    assert (stored["max_budget"], stored["budget_duration"]) == (1.0, "1d")
    assert _windows(stored) == {"1h": 0.5, "1w": 3.0}


def test_keys_list_shows_created_key_in_table_and_json(cli: Cli) -> None:
    """The table lists the key by token and alias; ``--json`` is the gateway's response, parseable as is."""
    created = _create(cli, "--window", "1h=0.25")
    table = cli("keys", "list")
    assert table.exit_code == 0, table.output
    assert created["token"] in table.stdout and created["key_alias"] in table.stdout
    assert "1h $0.00/$0.25" in table.stdout
    raw = cli("keys", "list", "--alias", created["key_alias"], "--json")
    assert raw.exit_code == 0, raw.output
    [listed] = json.loads(raw.stdout)["keys"]
    assert listed["token"] == created["token"]


def test_keys_info_table_shows_spend_of_every_window(cli: Cli, gateway: GatewayServer) -> None:
    """``keys info`` shows the spend the gateway charged in each window, not only the primary one."""
    created = _create(cli, "--max-budget", "1", "--budget-duration", "1d", "--window", "1h=0.5")
    assert _chat(gateway, created["key"]).status_code == 200
    result = cli("keys", "info", created["key"])
    assert result.exit_code == 0, result.output
    spent = f"${REQUEST_USD:.5f}"
    window_lines = [line for line in result.stdout.splitlines() if line.strip().startswith(("1d ", "1h "))]
    assert len(window_lines) == 2 and all(spent in line for line in window_lines), result.stdout


def test_keys_block_refuses_requests_until_unblocked(cli: Cli, gateway: GatewayServer) -> None:
    """``keys block`` takes effect on the LLM routes at once (401), ``keys unblock`` lifts it."""
    created = _create(cli)
    assert cli("keys", "block", created["token"]).exit_code == 0
    assert _chat(gateway, created["key"]).status_code == 401
    assert cli("keys", "unblock", created["key"]).exit_code == 0
    assert _chat(gateway, created["key"]).status_code == 200


def test_keys_reset_spend_invalid_value_exits_1_with_status_line(cli: Cli) -> None:
    """A 400 from the gateway (reset above the current spend) is one ``error: HTTP 400 ...`` line naming the
    field, exit code 1 and nothing on stdout, so scripts can tell failure from success."""
    created = _create(cli, "--max-budget", "1", "--budget-duration", "1d")
    result = cli("keys", "reset-spend", created["key"], "--to", "0.5")
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: HTTP 400 invalid_request_error: reset_to:"), line


def test_keys_reset_spend_sets_the_named_window(cli: Cli, gateway: GatewayServer) -> None:
    """``--window 1h`` resets only that window; the primary keeps its spend."""
    created = _create(cli, "--max-budget", "1", "--budget-duration", "1d", "--window", "1h=0.5")
    assert _chat(gateway, created["key"]).status_code == 200
    result = cli("keys", "reset-spend", created["key"], "--to", "0", "--window", "1h", "--reason", "test")
    assert result.exit_code == 0, result.output
    assert "1h window: spend reset" in result.stdout
    stored = _info(gateway, created["key"])
    assert stored["budget_limits"][0]["spend"] == 0
    assert stored["spend"] > 0


def test_keys_update_changes_only_given_options(cli: Cli, gateway: GatewayServer) -> None:
    """An update with one option leaves every other field as it was; ``--unset`` removes a field."""
    created = _create(cli, "--max-budget", "2", "--budget-duration", "1d", "--window", "1h=0.5", "--tag", "a")
    new_alias = _alias()
    result = cli("keys", "update", created["key"], "--alias", new_alias, "--json")
    assert result.exit_code == 0, result.output
    stored = _info(gateway, created["key"])
    assert stored["key_alias"] == new_alias
    assert (stored["max_budget"], _windows(stored), stored["tags"]) == (2.0, {"1h": 0.5}, ["a"])
    assert cli("keys", "update", created["key"], "--unset", "budget_limits").exit_code == 0
    assert _windows(_info(gateway, created["key"])) == {}


def test_keys_delete_without_yes_asks_and_aborts(cli: Cli, gateway: GatewayServer) -> None:
    """Deleting asks first; with no answer nothing is deleted."""
    created = _create(cli)
    assert cli("keys", "delete", created["key"]).exit_code == 1
    assert _info(gateway, created["key"])["token"] == created["token"]
    assert cli("keys", "delete", created["key"], "--yes").exit_code == 0
    assert _chat(gateway, created["key"]).status_code == 401


def test_keys_create_malformed_window_is_a_usage_error(cli: Cli) -> None:
    """``--window 1h`` (no amount) is refused before any request: exit code 2 naming the option."""
    result = cli("keys", "create", "--window", "1h")
    assert result.exit_code == 2
    assert "--window" in result.stderr and "DURATION=USD" in result.stderr
