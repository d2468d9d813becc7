"""A small organisation (organizations, teams, users, keys, customers, tags) and randomized traffic through the
gateway, remembering for every request what it should have been charged to.

Every id is unique to one world, so tests sharing a gateway (and its ledger) can pick out their own records.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.api.entities.helpers import add_member, client_of, get, new_key, new_team, new_user, post, uid
from tests.support.gateway import CHAT_MODEL, EMBEDDING_MODEL, FAILING_MODEL, FLAT_MODEL, GatewayServer

CHAT_MODELS = (CHAT_MODEL, FLAT_MODEL, FAILING_MODEL)


@dataclass(frozen=True)
class KeySpec:
    secret: str
    token: str
    user_id: str | None
    team_id: str | None
    organization_id: str | None  # the one charged: the team's, else the key's own
    tags: tuple[str, ...]  # the key's and its team's


@dataclass(frozen=True)
class Sent:
    """One request that reached the ledger, with the parties it must be recorded and charged with."""

    request_id: str
    key: KeySpec
    model: str
    customer: str | None
    tags: tuple[str, ...]  # every tag charged: key, team and (allowed) client tags, once each

    @property
    def charged(self) -> dict[str, set[str]]:
        """Entity type -> ids this request must have been charged to (spend_charges)."""
        key = self.key
        targets: dict[str, set[str]] = {"key": {key.token}, "tag": set(self.tags), "model": {self.model}}
        if key.team_id is not None:
            targets["team"] = {key.team_id}
            if key.user_id is not None:
                targets["team_member"] = {f"{key.team_id}/{key.user_id}"}
        elif key.user_id is not None:
            targets["user"] = {key.user_id}
        if key.organization_id is not None:
            targets["organization"] = {key.organization_id}
        if self.customer is not None:
            targets["customer"] = {self.customer}
        return targets


@dataclass
class World:
    organizations: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    keys: list[KeySpec] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    client_tags: list[str] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    @property
    def request_ids(self) -> set[str]:
        return {s.request_id for s in self.sent}


async def build_world(admin: httpx.AsyncClient) -> World:
    """Two organizations; team A (org 1, tagged), B (org 2), C (no org, tagged); users with personal keys (one
    with its own organization) and team keys (with and without a user); two customers; client tags, one of
    them also a team tag (charged once)."""
    world = World()
    org1, org2 = uid("org"), uid("org")
    for org in (org1, org2):
        await post(admin, "/organization/new", {"organization_id": org})
    tag_a, tag_c, tag_shared, tag_key = uid("tag-a"), uid("tag-c"), uid("tag-shared"), uid("tag-key")
    team_a = (await new_team(admin, organization_id=org1, tags=[tag_a]))["team_id"]
    team_b = (await new_team(admin, organization_id=org2))["team_id"]
    team_c = (await new_team(admin, tags=[tag_c, tag_shared]))["team_id"]
    u1, u2, u3 = [str((await new_user(admin, auto_create_key=False))["user_id"]) for _ in range(3)]
    await add_member(admin, team_a, u1)
    await add_member(admin, team_a, u2)
    await add_member(admin, team_b, u2)

    async def key(user: str | None, team: str | None, org: str | None, tags: tuple[str, ...], **extra: Any) -> None:
        fields: dict[str, Any] = {"user_id": user, "team_id": team, "tags": list(tags), **extra}
        created = await new_key(admin, **{name: value for name, value in fields.items() if value is not None})
        team_tags = {team_a: (tag_a,), team_c: (tag_c, tag_shared)}.get(team or "", ())
        world.keys.append(
            KeySpec(created["key"], created["token"], user, team, org, tuple(dict.fromkeys(tags + team_tags)))
        )

    await key(u1, None, None, (tag_key,))
    await key(u2, None, org2, (), organization_id=org2)
    await key(u3, None, None, ())
    await key(u1, team_a, org1, ())
    await key(u2, team_b, org2, (tag_shared,))
    await key(None, team_c, None, ())
    await key(u2, team_a, org1, (tag_key,))
    world.organizations = [org1, org2]
    world.teams = [team_a, team_b, team_c]
    world.users = [u1, u2, u3]
    world.customers = [uid("customer"), uid("customer")]
    world.tags = [tag_a, tag_c, tag_shared, tag_key]
    world.client_tags = [uid("tag-client"), tag_a]
    return world


async def _send(gateway: GatewayServer, world: World, rng: random.Random) -> None:
    key = rng.choice(world.keys)
    model = rng.choice((*CHAT_MODELS, EMBEDDING_MODEL))
    customer = rng.choice([None, *world.customers])
    client_tags = tuple(rng.sample(world.client_tags, rng.randint(0, len(world.client_tags))))
    body: dict[str, Any] = {"model": model, "metadata": {"tags": list(client_tags)}}
    if customer is not None:
        body["user"] = customer
    if model == EMBEDDING_MODEL:
        path = "/v1/embeddings"
        body["input"] = " ".join(["word"] * rng.randint(1, 30))
    else:
        path = "/v1/chat/completions"
        body["messages"] = [{"role": "user", "content": " ".join(["hi"] * rng.randint(1, 30))}]
        body["max_tokens"] = rng.randint(1, 16)
        body["stream"] = rng.random() < 0.3
    async with client_of(gateway, key.secret) as client:
        response = await client.post(path, json=body)
        await response.aread()
    # FAILING_MODEL's upstream answers 500: the request reached an upstream, so it has a record too.
    assert response.status_code == (500 if model == FAILING_MODEL else 200), response.text
    world.sent.append(
        Sent(
            request_id=response.headers["x-ledgergate-request-id"],
            key=key,
            model=model,
            customer=customer,
            tags=tuple(dict.fromkeys(key.tags + client_tags)),
        )
    )


async def send_traffic(gateway: GatewayServer, world: World, seed: int, count: int, concurrency: int = 8) -> None:
    """``count`` requests with random keys, models, customers and client tags, ``concurrency`` at a time."""
    rng = random.Random(seed)
    for start in range(0, count, concurrency):
        await asyncio.gather(*(_send(gateway, world, rng) for _ in range(min(concurrency, count - start))))


async def all_logs(admin: httpx.AsyncClient, page_size: int = 7, **params: Any) -> list[dict[str, Any]]:
    """Every /spend/logs row for ``params``, page by page (small pages, so that paging itself is exercised)."""
    rows: list[dict[str, Any]] = []
    for page in range(1, 10_000):
        batch: list[dict[str, Any]] = await get(admin, "/spend/logs", page=page, page_size=page_size, **params)
        rows.extend(batch)
        if len(batch) < page_size:
            return rows
    raise AssertionError("/spend/logs never ended")


def sql_rows(db_path: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """A direct read of the gateway's SQLite ledger: the reference the API's sums must equal."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as connection:
        return list(connection.execute(query, args).fetchall())
