"""A month of plausible history for the screenshots: an organization, teams, users, tags, keys and ledger records.

Everything is written through the real services and the real ledger into the gateway's own database before it
starts, so the pages show what a gateway with that history would show. Amounts are chosen so that some windows
are near or at their limit (the overview's list, the bars' colours, a 429 reason on a detail page).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ledgergate.config import GatewayConfig
from ledgergate.container import Container, build_container
from ledgergate.domain.charging import RequestParties, charge_targets, request_tags
from ledgergate.domain.ledger import SpendRecord
from ledgergate.domain.money import usd_to_nanos
from ledgergate.services.entities import ORGANIZATION, TAG
from tests.builders import spend_record

DAYS = 30
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "text-embedding-3-small")


@dataclass(frozen=True)
class SeedKey:
    alias: str
    team_id: str | None
    user_id: str | None
    tags: tuple[str, ...]
    windows: tuple[tuple[str | None, float], ...]  # (budget_duration or None for lifetime, max USD)
    daily_usd: float  # typical spend on past days
    today_usd: float  # spend so far today
    this_hour_usd: float = 0.0  # part of today_usd charged in the current hour


KEYS = (
    SeedKey("search-api", "search", "alice", (), (("1h", 2), ("1d", 30)), 11.0, 9.0, 0.6),
    SeedKey("search-reindex", "search", None, ("batch",), (("1d", 8),), 2.5, 7.0),
    SeedKey("research-notebook", "research", "bob", (), (("1mo", 60),), 1.1, 1.0),
    SeedKey("support-bot-eu", "support", "carol", (), (("1h", 0.5), ("1d", 6)), 2.0, 2.4, 0.5),
    SeedKey("batch-jobs", None, None, ("batch",), (("1d", 5),), 2.2, 4.2),
    SeedKey("ci-smoke", None, "bob", ("experiments",), ((None, 1),), 0.01, 0.02),
)


def _budget_fields(windows: tuple[tuple[str | None, float], ...]) -> dict[str, Any]:
    (first_duration, first_max), *rest = windows
    return {
        "max_budget": first_max,
        "budget_duration": first_duration,
        "budget_limits": [{"budget_duration": d, "max_budget": m} for d, m in rest],
    }


async def _entities(container: Container) -> None:
    admin = container.entity_admin
    await admin.entities.create(
        ORGANIZATION, "acme", {"organization_alias": "Acme Corp", "max_budget": 2000, "budget_duration": "1mo"}
    )
    for user_id, email in (("alice", "alice@acme.dev"), ("bob", "bob@acme.dev"), ("carol", "carol@acme.dev")):
        await admin.users.create(user_id, {"user_email": email}, auto_create_key=False)
    teams = (
        (
            "search",
            "Search",
            {
                "max_budget": 40,
                "budget_duration": "1d",
                "tags": ["prod"],
                "budget_limits": [{"budget_duration": "1mo", "max_budget": 900}],
            },
        ),
        ("research", "Research", {"max_budget": 150, "budget_duration": "1mo"}),
        ("support", "Support bots", {"max_budget": 10, "budget_duration": "1d", "tags": ["prod"]}),
    )
    for team_id, alias, fields in teams:
        members = [
            {"user_id": u, "role": "admin" if u == "alice" else "user"}
            for u in ("alice", "bob", "carol")
            if (team_id, u) in {("search", "alice"), ("research", "bob"), ("support", "carol")}
        ]
        await admin.teams.create(team_id, {"team_alias": alias, "organization_id": "acme", **fields}, members)
    for name, description, fields in (
        ("prod", "production traffic", {"max_budget": 400, "budget_duration": "1w"}),
        ("batch", "offline batch jobs", {"max_budget": 12, "budget_duration": "1d"}),
        ("experiments", "anything goes, small budget", {"max_budget": 3, "budget_duration": "1w"}),
    ):
        await admin.entities.create(TAG, name, {"description": description, **fields})


def _record(key_id: str, spec: SeedKey, team_org: str | None, at: datetime, usd: float, model: str) -> SpendRecord:
    parties = RequestParties(
        key_id=key_id,
        user_id=spec.user_id,
        team_id=spec.team_id,
        team_organization_id=team_org,
        key_tags=spec.tags,
        team_tags=("prod",) if spec.team_id in ("search", "support") else (),
    )
    charged_us = int(at.timestamp() * 1_000_000)
    return spend_record(
        uuid.uuid4().hex,
        cost_nanos=usd_to_nanos(round(usd, 6)),
        charged_at_us=charged_us,
        targets=charge_targets(parties),
        key_id=key_id,
        model=model,
        deployment_id=model,
        prompt_tokens=int(usd * 40_000) + 12,
        completion_tokens=int(usd * 9_000) + 3,
        ended_at_us=charged_us + 900_000,
        user_id=spec.user_id,
        team_id=spec.team_id,
        organization_id=team_org,
        tags=request_tags(parties),
    )


async def _history(container: Container, key_ids: dict[str, str], now: datetime) -> None:
    rng = random.Random(20261122)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    hour = now.replace(minute=0, second=0, microsecond=0)
    for spec in KEYS:
        key_id = key_ids[spec.alias]
        org = "acme" if spec.team_id else None
        records = []
        for day in range(DAYS - 1, 0, -1):
            total = spec.daily_usd * (0.5 + rng.random()) * (0.6 if (today - timedelta(days=day)).weekday() >= 5 else 1)
            for part in range(4):
                at = today - timedelta(days=day) + timedelta(hours=rng.uniform(6, 22))
                records.append(_record(key_id, spec, org, at, total / 4, MODELS[(part + day) % 3]))
        earlier = spec.today_usd - spec.this_hour_usd
        elapsed_s = max((hour - today).total_seconds(), 1.0)
        for part in range(6):
            at = today + timedelta(seconds=elapsed_s * (part + 0.5) / 6)
            records.append(_record(key_id, spec, org, at, earlier / 6, MODELS[part % 4]))
        if spec.this_hour_usd:
            at = hour + (now - hour) / 2
            records.append(_record(key_id, spec, org, at, spec.this_hour_usd, "gpt-4o"))
        for record in records:
            await container.ledger.append(record)


async def seed_history(config: GatewayConfig) -> dict[str, str]:
    """Seed the gateway's database; returns ``{alias: key secret}``."""
    container = await build_container(config)
    try:
        await _entities(container)
        secrets: dict[str, str] = {}
        key_ids: dict[str, str] = {}
        for spec in KEYS:
            fields = {
                "key_alias": spec.alias,
                "team_id": spec.team_id,
                "user_id": spec.user_id,
                "tags": list(spec.tags),
                **_budget_fields(spec.windows),
            }
            created = await container.keys.generate(fields)
            secrets[spec.alias], key_ids[spec.alias] = created["key"], created["token"]
        now = datetime.fromtimestamp(container.clock.now_s(), UTC)
        await _history(container, key_ids, now)
    finally:
        await container.aclose()
    # Records appended behind the counters' back: a fresh container (fresh counters, loaded from the ledger) sees
    # them, as the gateway will.
    container = await build_container(config)
    try:
        support_bot = await container.keys.get(key_ids["support-bot-eu"])
        await container.resets.reset(
            support_bot, 1.0, "1d", "master_key", "credited: duplicate requests from a client retry bug (INC-4711)"
        )
    finally:
        await container.aclose()
    return secrets
