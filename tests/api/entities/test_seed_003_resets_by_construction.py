"""Seed 003: budgets reset by construction. LiteLLM's reset job had no tag handler, so a tag blocked once stayed
blocked forever. Here a window's spend is the ledger's sum over its current period, so every entity type is
admitted again as soon as its period ends, without any job, admin call or database write in between."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from tests.api.entities.helpers import (
    ONE_REQUEST,
    add_member,
    chat,
    new_key,
    new_team,
    new_user,
    post,
    refused_by,
    uid,
)
from tests.support.gateway import GatewayServer
from tests.support.timing import scaled

# The window must outlast one round of 16 requests (retried in a fresh period if it did not): scaled
# (tests/support/timing.py), so that a loaded machine does not straddle every period.
PERIOD_S = math.ceil(scaled(3.0))
WINDOW = {"max_budget": ONE_REQUEST, "budget_duration": f"{PERIOD_S}s"}
ATTEMPTS = 5


@dataclass(frozen=True)
class Case:
    entity: str
    entity_id: str
    secret: str
    customer: str | None = None

    async def send(self, gateway: GatewayServer) -> httpx.Response:
        extra = {"user": self.customer} if self.customer else {}
        return await chat(gateway, self.secret, **extra)


async def _cases(admin: httpx.AsyncClient) -> list[Case]:
    """One key per entity type, whose only limit is that entity's PERIOD_S window of one request."""
    tag = uid("tag")
    await post(admin, "/tag/new", {"name": tag, **WINDOW})
    budget = await post(admin, "/budget/new", WINDOW)
    linked_tag = uid("linked-tag")
    await post(admin, "/tag/new", {"name": linked_tag, "budget_id": budget["budget_id"]})
    user = await new_user(admin, **WINDOW)
    team = await new_team(admin, **WINDOW)
    org = await post(admin, "/organization/new", WINDOW)
    org_team = await new_team(admin, organization_id=org["organization_id"])
    customer = uid("customer")
    await post(admin, "/customer/new", {"user_id": customer, **WINDOW})
    member_team, member = await new_team(admin), await new_user(admin)
    await add_member(admin, member_team["team_id"], member["user_id"], max_budget_in_team=ONE_REQUEST)
    await post(
        admin,
        "/team/member_update",
        {"team_id": member_team["team_id"], "user_id": member["user_id"], "budget_duration": f"{PERIOD_S}s"},
    )
    key = await new_key(admin, **WINDOW)

    async def secret(**fields: object) -> str:
        return str((await new_key(admin, **fields))["key"])

    return [
        Case("tag", tag, await secret(tags=[tag])),
        Case("tag", linked_tag, await secret(tags=[linked_tag])),
        Case("user", user["user_id"], user["key"]),
        Case("team", team["team_id"], await secret(team_id=team["team_id"])),
        Case("organization", org["organization_id"], await secret(team_id=org_team["team_id"])),
        Case("customer", customer, await secret(), customer=customer),
        Case(
            "team_member",
            f"{member_team['team_id']}/{member['user_id']}",
            await secret(team_id=member_team["team_id"], user_id=member["user_id"]),
        ),
        Case("key", key["token"], key["key"]),
    ]


async def _at_period_start() -> int:
    """Sleep to just after the next period boundary; returns the index of the period that begins."""
    now = time.time()
    await asyncio.sleep(PERIOD_S - now % PERIOD_S + 0.02)
    return math.floor(time.time() / PERIOD_S)


async def _within_one_period(step: Callable[[], Awaitable[list[httpx.Response]]]) -> tuple[int, list[httpx.Response]]:
    """Run ``step`` inside a single period (retried in a fresh one if it straddled a boundary)."""
    for _ in range(ATTEMPTS):
        period = await _at_period_start()
        results = await step()
        if math.floor(time.time() / PERIOD_S) == period:
            return period, results
    raise AssertionError(f"could not run the step inside one {PERIOD_S}s period")


async def test_seed_003_every_entity_type_is_admitted_again_after_its_window_elapses(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Tag, tag via budget_id, user, team, organization, customer, team member and key: each is refused once its
    PERIOD_S window is spent (reset_at = the period's end), then served again right after that instant, with no
    reset job and nobody touching the database in between."""
    cases = await _cases(admin)

    async def spend_then_refuse(case: Case) -> httpx.Response:
        first = await case.send(gateway)
        assert first.status_code == 200, (case, first.text)
        return await case.send(gateway)

    async def block_all() -> list[httpx.Response]:
        return list(await asyncio.gather(*(spend_then_refuse(case) for case in cases)))

    period, refusals = await _within_one_period(block_all)
    period_end = datetime.fromtimestamp((period + 1) * PERIOD_S, UTC).isoformat().replace("+00:00", "Z")
    for case, refusal in zip(cases, refusals, strict=True):
        assert refused_by(refusal) == (case.entity, case.entity_id, f"{PERIOD_S}s"), case
        assert refusal.json()["error"]["reset_at"] == period_end, case

    await asyncio.sleep(max(0.0, (period + 1) * PERIOD_S - time.time()) + 0.05)
    served = await asyncio.gather(*(case.send(gateway) for case in cases))
    assert [(case.entity, response.status_code) for case, response in zip(cases, served, strict=True)] == [
        (case.entity, 200) for case in cases
    ]
