"""``ledgergate teams|users|tags|budgets ...`` against a real gateway."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.api.cli.conftest import Cli


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _json(cli: Cli, *args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_teams_member_lifecycle_and_reset(cli: Cli) -> None:
    """create -> add-member (with an in-team budget) -> info shows the member -> remove-member; a reset above the
    team's spend is refused with the gateway's 400."""
    team_id, user_id = _name("team"), _name("user")
    _json(cli, "teams", "create", "--team-id", team_id, "--max-budget", "5", "--budget-duration", "1d")
    added = cli("teams", "add-member", team_id, user_id, "--role", "admin", "--max-budget-in-team", "2")
    assert added.exit_code == 0, added.output
    info = cli("teams", "info", team_id)
    assert info.exit_code == 0, info.output
    assert user_id in info.stdout and "$0.00/$2.00" in info.stdout
    assert cli("teams", "remove-member", team_id, user_id).exit_code == 0
    assert _json(cli, "teams", "info", team_id)["team_memberships"] == []
    refused = cli("teams", "reset-spend", team_id, "--to", "1")
    assert refused.exit_code == 1 and "HTTP 400" in refused.stderr
    assert cli("teams", "reset-spend", team_id, "--to", "0").exit_code == 0


def test_users_create_prints_personal_key_once(cli: Cli) -> None:
    """A created user gets a personal key whose secret is shown; ``--no-key`` issues none."""
    user_id = _name("user")
    created = cli("users", "create", "--user-id", user_id, "--max-budget", "3")
    assert created.exit_code == 0, created.output
    assert "personal key secret: sk-" in created.stdout
    keyless = _json(cli, "users", "create", "--user-id", _name("user"), "--no-key")
    assert keyless.get("key") is None
    listed = _json(cli, "users", "list", "--page-size", "1000")
    assert user_id in {user["user_id"] for user in listed["users"]}
    assert cli("users", "delete", user_id, "--yes").exit_code == 0
    gone = cli("users", "info", user_id)
    assert gone.exit_code == 1 and "HTTP 404" in gone.stderr


def test_tags_with_slash_in_name_round_trip(cli: Cli) -> None:
    """Tag names like ``tenant/acme`` (and other URL-special characters) reach the right tag in info, update,
    reset-spend and delete."""
    name = f"tenant/{_name('acme')} x?"
    _json(cli, "tags", "create", name, "--max-budget", "1", "--budget-duration", "1h", "--description", "d")
    assert _json(cli, "tags", "info", name)["name"] == name
    updated = _json(cli, "tags", "update", name, "--window", "1d=4")
    assert updated["budget_limits"][0]["max_budget"] == 4
    reset = _json(cli, "tags", "reset-spend", name, "--to", "0")
    assert reset["name"] == name
    assert cli("tags", "delete", name, "--yes").exit_code == 0
    assert name not in {tag["name"] for tag in _json(cli, "tags", "list")}


def test_budgets_update_applies_and_delete_refuses_while_referenced(cli: Cli) -> None:
    """A shared budget can be changed; deleting it while a key references it is the gateway's 400."""
    budget_id = _name("budget")
    _json(cli, "budgets", "create", "--budget-id", budget_id, "--max-budget", "10", "--budget-duration", "30d")
    updated = _json(cli, "budgets", "update", budget_id, "--max-budget", "20", "--window", "1d=2")
    assert (updated["max_budget"], updated["budget_limits"][0]["max_budget"]) == (20, 2)
    key = _json(cli, "keys", "create", "--budget-id", budget_id)
    refused = cli("budgets", "delete", budget_id, "--yes")
    assert refused.exit_code == 1 and "HTTP 400" in refused.stderr
    assert cli("keys", "delete", key["key"], "--yes").exit_code == 0
    assert cli("budgets", "delete", budget_id, "--yes").exit_code == 0
    assert budget_id not in {b["budget_id"] for b in _json(cli, "budgets", "list")}
