"""/spend/report over randomized traffic: for every grouping and filter, totals equal the ledger records they
cover, summed three ways (the report, a direct SQL sum, the /spend/logs rows)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.entities.helpers import REQUEST_NANOS, chat, get, new_key, new_team, new_user
from tests.api.spend.world import World, all_logs, build_world, send_traffic, sql_rows
from tests.support.gateway import GatewayServer

GROUPS = ("key", "user", "team", "team_member", "organization", "customer", "tag", "model")
Totals = tuple[int, int, int, int]  # cost_nanos, requests, prompt_tokens, completion_tokens


def _around_today() -> dict[str, str]:
    """Yesterday to tomorrow (UTC, the gateway's timezone): every record of the module, even across midnight."""
    today = datetime.now(UTC).date()
    return {"start_date": str(today - timedelta(days=1)), "end_date": str(today + timedelta(days=1))}


async def _report(admin: httpx.AsyncClient, group_by: str, **params: str) -> dict[str, Any]:
    report: dict[str, Any] = await get(admin, "/spend/report", group_by=group_by, **_around_today(), **params)
    return report


def _by_entity(report: dict[str, Any]) -> dict[str, Totals]:
    entities = {
        e["entity_id"]: (e["cost_nanos"], e["requests"], e["prompt_tokens"], e["completion_tokens"])
        for e in report["entities"]
    }
    assert len(entities) == len(report["entities"]), "an entity listed twice"
    return entities


def _sql_by_entity(db: Any, group_by: str) -> dict[str, Totals]:
    """The reference: per-entity sums straight from spend_charges (spend_records for models)."""
    if group_by == "model":
        query = (
            "SELECT model, SUM(cost_nanos), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) "
            "FROM spend_records GROUP BY model"
        )
        return {row[0]: tuple(row[1:]) for row in sql_rows(db, query)}
    query = (
        "SELECT c.entity_id, SUM(c.cost_nanos), COUNT(*), SUM(r.prompt_tokens), SUM(r.completion_tokens) "
        "FROM spend_charges c JOIN spend_records r ON r.request_id = c.request_id "
        "WHERE c.entity_type = ? GROUP BY c.entity_id"
    )
    return {row[0]: tuple(row[1:]) for row in sql_rows(db, query, group_by)}


def _logs_filter(group_by: str, entity_id: str) -> tuple[dict[str, str], Any]:
    """The /spend/logs filter selecting the records charged to an entity, and a row predicate refining it: a
    user is charged for personal keys only, which the key's-user filter does not distinguish."""
    if group_by == "team_member":
        team_id, user_id = entity_id.split("/")
        return {"team_id": team_id, "user_id": user_id}, lambda row: True
    if group_by == "user":
        return {"user_id": entity_id}, lambda row: row["team_id"] is None
    name = {
        "key": "api_key",
        "team": "team_id",
        "organization": "organization_id",
        "customer": "customer",
        "tag": "tag",
        "model": "model",
    }[group_by]
    return {name: entity_id}, lambda row: True


def _totals_of(rows: list[dict[str, Any]]) -> Totals:
    return (
        sum(row["cost_nanos"] for row in rows),
        len(rows),
        sum(row["prompt_tokens"] for row in rows),
        sum(row["completion_tokens"] for row in rows),
    )


def _own_entities(world: World, group_by: str) -> dict[str, set[str]]:
    """Entity id -> the world's requests that must be charged to it (from what each request carried)."""
    charged: dict[str, set[str]] = defaultdict(set)
    for sent in world.sent:
        for entity_id in sent.charged.get(group_by, set()):
            charged[entity_id].add(sent.request_id)
    return charged


@pytest.mark.parametrize("seed", [1, 2])
async def test_spend_report_totals_equal_ledger_sums_for_randomized_traffic(
    spend_gateway: GatewayServer, admin: httpx.AsyncClient, seed: int
) -> None:
    """For every grouping: each entity's totals equal the SQL sum of its spend_charges rows, the sum of its
    /spend/logs rows and the sum over the requests the test knows were charged to it (so a tag holds only the
    requests carrying it, a user only personal-key requests); rows add up to entities, entities to the total;
    the key and model groupings both add up to the whole ledger."""
    world = await build_world(admin)
    await send_traffic(spend_gateway, world, seed=seed, count=56)
    db = spend_gateway.db_path
    logs = {row["request_id"]: row for row in await all_logs(admin, page_size=1000)}
    ledger_total = sql_rows(db, "SELECT SUM(cost_nanos), COUNT(*) FROM spend_records")[0]
    for group_by in GROUPS:
        report = await _report(admin, group_by)
        entities = _by_entity(report)
        assert entities == _sql_by_entity(db, group_by), group_by
        per_entity_rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for row in report["rows"]:
            sums = per_entity_rows[row["entity_id"]]
            for i, name in enumerate(("cost_nanos", "requests", "prompt_tokens", "completion_tokens")):
                sums[i] += row[name]
            assert row["spend"] == row["cost_nanos"] / 1e9
            assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
        assert {k: tuple(v) for k, v in per_entity_rows.items()} == entities, group_by
        total = report["total"]
        assert total["cost_nanos"] == sum(t[0] for t in entities.values())
        assert total["requests"] == sum(t[1] for t in entities.values())
        if group_by in ("key", "model"):  # exactly one per record
            assert (total["cost_nanos"], total["requests"]) == ledger_total
        for entity_id, request_ids in _own_entities(world, group_by).items():
            params, keep = _logs_filter(group_by, entity_id)
            rows = [row for row in await all_logs(admin, page_size=1000, **params) if keep(row)]
            assert _totals_of(rows) == entities[entity_id], (group_by, entity_id)
            if group_by != "model":  # models are shared with other tests of the module
                assert {row["request_id"] for row in rows} == request_ids, (group_by, entity_id)
                assert _totals_of([logs[rid] for rid in request_ids]) == entities[entity_id]
    assert (sum(row["cost_nanos"] for row in logs.values()), len(logs)) == ledger_total


async def test_spend_report_filters_cover_the_same_records_as_spend_logs(
    spend_gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """With any /spend/logs filter (alone or combined), the key and model groupings total exactly the logs rows
    it selects, and the tag grouping sums each tag over those rows only."""
    world = await build_world(admin)
    await send_traffic(spend_gateway, world, seed=3, count=40)
    key, team, user, org = world.keys[4], world.teams[0], world.users[1], world.organizations[1]
    customer = world.customers[0]
    filters: list[dict[str, str]] = [
        {"api_key": key.secret},
        {"user_id": user},
        {"team_id": team},
        {"organization_id": org},
        {"customer": customer},
        {"tag": world.tags[2]},
        {"tag": world.client_tags[0]},
        {"model": world.sent[0].model, "team_id": team},
        {"user_id": user, "customer": customer},
    ]
    for params in filters:
        rows = await all_logs(admin, page_size=1000, **params)
        expected = _totals_of(rows)
        for group_by in ("key", "model"):
            total = (await _report(admin, group_by, **params))["total"]
            got = (total["cost_nanos"], total["requests"], total["prompt_tokens"], total["completion_tokens"])
            assert got == expected, (params, group_by)
        per_tag: dict[str, int] = defaultdict(int)
        for row in rows:
            for tag in row["request_tags"]:
                per_tag[tag] += row["cost_nanos"]
        tags = _by_entity(await _report(admin, "tag", **params))
        assert {tag: totals[0] for tag, totals in tags.items()} == dict(per_tag), params


async def test_spend_report_team_key_spend_is_never_the_users_personal_spend(
    spend_gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Seed 004 in the report: a user's row holds their personal keys' spend only; their team key's requests
    are the team's and the team member's, while /spend/logs?user_id lists both."""
    user = await new_user(admin)
    team = await new_team(admin, members_with_roles=[{"user_id": user["user_id"], "role": "user"}])
    team_key = await new_key(admin, user_id=user["user_id"], team_id=team["team_id"])
    for secret in (user["key"], team_key["key"], team_key["key"]):
        assert (await chat(spend_gateway, secret)).status_code == 200
    users = _by_entity(await _report(admin, "user", user_id=user["user_id"]))
    assert {k: v[:2] for k, v in users.items()} == {user["user_id"]: (REQUEST_NANOS, 1)}
    members = _by_entity(await _report(admin, "team_member", user_id=user["user_id"]))
    assert {k: v[:2] for k, v in members.items()} == {f"{team['team_id']}/{user['user_id']}": (2 * REQUEST_NANOS, 2)}
    teams = _by_entity(await _report(admin, "team", team_id=team["team_id"]))
    assert {k: v[:2] for k, v in teams.items()} == {team["team_id"]: (2 * REQUEST_NANOS, 2)}
    assert len(await all_logs(admin, user_id=user["user_id"])) == 3
