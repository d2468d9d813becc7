"""``ledgergate spend logs``: the ledger's rows for a filter, as a table or JSON."""

from __future__ import annotations

import json

import httpx

from tests.api.cli.conftest import Cli
from tests.support.gateway import FLAT_MODEL, FLAT_OUTPUT_NANOS_PER_TOKEN, GatewayServer
from tests.support.timing import HTTP_TIMEOUT_S

TOKENS = 8


def _chat(gateway: GatewayServer, secret: str) -> None:
    body = {"model": FLAT_MODEL, "messages": [{"role": "user", "content": "go"}], "max_tokens": TOKENS}
    response = httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text


def test_spend_logs_lists_the_key_requests_with_exact_total(cli: Cli, gateway: GatewayServer) -> None:
    """Filtered by key, the logs hold exactly that key's requests; the table's total is the exact sum of their
    integer nano costs (no float drift)."""
    created = json.loads(cli("keys", "create", "--json").stdout)
    other = json.loads(cli("keys", "create", "--json").stdout)
    for secret in (created["key"], created["key"], other["key"]):
        _chat(gateway, secret)
    rows = json.loads(cli("spend", "logs", "--for-key", created["key"], "--json").stdout)
    assert [row["api_key"] for row in rows] == [created["token"]] * 2
    assert all(row["cost_nanos"] == TOKENS * FLAT_OUTPUT_NANOS_PER_TOKEN for row in rows)
    table = cli("spend", "logs", "--for-key", created["token"])
    assert table.exit_code == 0, table.output
    assert rows[0]["request_id"] in table.stdout
    assert "2 request(s) on this page, $0.000032 in total" in table.stdout


def test_spend_logs_bad_date_is_the_gateway_400(cli: Cli) -> None:
    """An unparseable --start is reported with the gateway's message naming start_date."""
    result = cli("spend", "logs", "--start", "yesterday")
    assert result.exit_code == 1
    assert "HTTP 400" in result.stderr and "start_date" in result.stderr


def test_spend_report_totals_per_key_equal_the_ledger(cli: Cli, gateway: GatewayServer) -> None:
    """`spend report` totals each key's spend over the range exactly (integer nanos), as table and JSON."""
    created = json.loads(cli("keys", "create", "--json").stdout)
    for _ in range(3):
        _chat(gateway, created["key"])
    document = json.loads(cli("spend", "report", "--group-by", "key", "--for-key", created["key"], "--json").stdout)
    (entity,) = document["entities"]
    assert entity["entity_id"] == created["token"]
    assert entity["requests"] == 3
    assert entity["cost_nanos"] == 3 * TOKENS * FLAT_OUTPUT_NANOS_PER_TOKEN
    table = cli("spend", "report", "--for-key", created["key"])
    assert table.exit_code == 0, table.output
    assert "3 request(s), $0.000048 in total" in table.stdout
    daily = cli("spend", "report", "--for-key", created["key"], "--daily")
    assert daily.exit_code == 0, daily.output


def test_spend_report_unknown_group_is_a_usage_error(cli: Cli) -> None:
    """--group-by takes only the groups the gateway reports by."""
    result = cli("spend", "report", "--group-by", "planet")
    assert result.exit_code == 2
