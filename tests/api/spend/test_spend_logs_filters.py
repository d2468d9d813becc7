"""/spend/logs over randomized traffic: every filter selects exactly the requests it names, paging loses and
repeats nothing, and time bounds are start-inclusive, end-exclusive (a date as end_date covers that day)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.api.spend.world import CHAT_MODELS, Sent, World, all_logs, build_world, send_traffic
from tests.support.gateway import EMBEDDING_MODEL, GatewayServer

Selector = Callable[[Sent], bool]


def _filters(world: World) -> list[tuple[dict[str, str], Selector]]:
    """Each filter the endpoint offers, for every value in the world, with the requests it must select."""
    cases: list[tuple[dict[str, str], Selector]] = []
    for key in world.keys:
        cases.append(({"api_key": key.secret}, lambda s, k=key.token: s.key.token == k))
        cases.append(({"api_key": key.token}, lambda s, k=key.token: s.key.token == k))
    for user in world.users:  # the key's user: their personal and their team keys
        cases.append(({"user_id": user}, lambda s, u=user: s.key.user_id == u))
    for team in world.teams:
        cases.append(({"team_id": team}, lambda s, t=team: s.key.team_id == t))
    for org in world.organizations:
        cases.append(({"organization_id": org}, lambda s, o=org: s.key.organization_id == o))
    for customer in world.customers:
        cases.append(({"customer": customer}, lambda s, c=customer: s.customer == c))
    for tag in [*world.tags, *world.client_tags]:
        cases.append(({"tag": tag}, lambda s, t=tag: t in s.tags))
    for model in (*CHAT_MODELS, EMBEDDING_MODEL):
        cases.append(({"model": model}, lambda s, m=model: s.model == m))
    team, user, tag, customer = world.teams[0], world.users[1], world.tags[0], world.customers[0]
    cases.append(({"team_id": team, "user_id": user}, lambda s: s.key.team_id == team and s.key.user_id == user))
    cases.append(({"tag": tag, "customer": customer}, lambda s: tag in s.tags and s.customer == customer))
    return cases


def _ids(rows: list[dict[str, Any]], world: World) -> list[str]:
    """This world's request ids among ``rows`` (models are shared with other tests of the module)."""
    return [row["request_id"] for row in rows if row["request_id"] in world.request_ids]


def _instant_us(iso: str) -> int:
    parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return (parsed - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


async def _world_with_traffic(spend_gateway: GatewayServer, admin: httpx.AsyncClient, seed: int) -> World:
    world = await build_world(admin)
    await send_traffic(spend_gateway, world, seed=seed, count=48)
    return world


async def test_spend_logs_rows_show_every_party_of_the_request(
    spend_gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Each request has exactly one row, naming its key (hash), user, team, organization, customer, every tag
    it was charged to and its model; ``spend`` is ``cost_nanos`` in USD and ``total_tokens`` their sum."""
    world = await _world_with_traffic(spend_gateway, admin, seed=11)
    rows = {row["request_id"]: row for row in await all_logs(admin, page_size=1000) if row["request_id"]}
    for sent in world.sent:
        row = rows[sent.request_id]
        assert row["api_key"] == sent.key.token
        assert (row["user_id"], row["team_id"]) == (sent.key.user_id, sent.key.team_id)
        assert row["organization_id"] == sent.key.organization_id
        assert row["user"] == row["end_user"] == sent.customer
        assert sorted(row["request_tags"]) == sorted(sent.tags)
        assert row["model"] == sent.model
        assert row["spend"] == row["cost_nanos"] / 1e9
        assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
    assert len(_ids(list(rows.values()), world)) == len(world.sent)


async def test_spend_logs_each_filter_selects_exactly_the_matching_requests(
    spend_gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """key (secret or hash), user, team, organization, customer, tag (key, team and client tags), model and
    combinations of them: the rows are exactly the requests that match, each once (no join duplicates)."""
    world = await _world_with_traffic(spend_gateway, admin, seed=12)
    for params, selects in _filters(world):
        got = _ids(await all_logs(admin, **params), world)
        expected = {s.request_id for s in world.sent if selects(s)}
        assert len(got) == len(set(got)), f"{params}: a request listed twice"
        assert set(got) == expected, params


async def test_spend_logs_pages_are_disjoint_and_newest_first(
    spend_gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Small pages concatenate to the single large page: same rows, same order, newest first."""
    world = await _world_with_traffic(spend_gateway, admin, seed=13)
    for params in ({"team_id": world.teams[0]}, {"tag": world.client_tags[1]}, {}):
        paged = await all_logs(admin, page_size=3, **params)
        whole = await all_logs(admin, page_size=1000, **params)
        assert [row["request_id"] for row in paged] == [row["request_id"] for row in whole], params
        starts = [_instant_us(row["startTime"]) for row in whole]
        assert starts == sorted(starts, reverse=True)


async def test_spend_logs_time_bounds_start_inclusive_end_exclusive(
    spend_gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """An instant bound splits the records exactly at their charge time (to the microsecond); dates cover whole
    days of the gateway's timezone (UTC here), ``end_date`` included; an instant without offset is read in
    that timezone too."""
    world = await _world_with_traffic(spend_gateway, admin, seed=14)
    rows = [row for row in await all_logs(admin, page_size=1000) if row["request_id"] in world.request_ids]
    times = {row["request_id"]: _instant_us(row["startTime"]) for row in rows}
    for row in rows[:: max(1, len(rows) // 6)]:
        split = row["startTime"]
        after = {rid for rid, at in times.items() if at >= times[row["request_id"]]}
        assert set(_ids(await all_logs(admin, page_size=1000, start_date=split), world)) == after
        before = set(_ids(await all_logs(admin, page_size=1000, end_date=split), world))
        assert before == set(times) - after
        naive = split.removesuffix("Z")
        assert set(_ids(await all_logs(admin, page_size=1000, start_date=naive), world)) == after
    days = sorted({row["startTime"][:10] for row in rows})
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    everything = await all_logs(admin, page_size=1000, start_date=days[0], end_date=days[-1])
    assert set(_ids(everything, world)) == set(times)
    assert _ids(await all_logs(admin, end_date=str(first - timedelta(days=1))), world) == []
    assert _ids(await all_logs(admin, start_date=str(last + timedelta(days=1))), world) == []
