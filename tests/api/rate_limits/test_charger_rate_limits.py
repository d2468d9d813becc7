"""Rate limits in the charging service, on a clock the test moves: minute boundaries, restarts, token counts,
requests in flight, strict mode, and whose limit applies (ledgergate/services/request_charging.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ledgergate.domain.admission import BudgetMode
from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.pricing import Usage
from ledgergate.domain.rate_limits import RateLimited, RateLimitField
from ledgergate.services.request_charging import Refusal, Ticket
from tests.domain.reference_model.core import EPOCH_START_S, Core, MonotonicClock, llm_call, window

HOLD_TTL_S = 30.0
Outcome = Ticket | Refusal | RateLimited

CoreFactory = Callable[..., Awaitable[Core]]


@pytest.fixture
async def make_core(tmp_path: Path) -> AsyncIterator[CoreFactory]:
    cores: list[Core] = []

    async def make(mode: BudgetMode = BudgetMode.STANDARD) -> Core:
        core = Core(tmp_path / f"ledger-{len(cores)}.db", MonotonicClock(EPOCH_START_S), mode, HOLD_TTL_S)
        cores.append(core)
        await core.open()
        return core

    yield make
    for core in cores:
        await core.close()


async def _entity(core: Core, entity_type: EntityType, entity_id: str, **fields: Any) -> Entity:
    return await core.directory.create(Entity(entity_type, entity_id, **fields))


async def _admit(core: Core, request_id: str, key_id: str = "k", max_tokens: int = 10) -> Outcome:
    outcome = await core.charger.admit(await core.key(key_id), llm_call(request_id, 100, max_tokens))
    assert isinstance(outcome, Ticket | Refusal | RateLimited)
    return outcome


async def _served(core: Core, request_id: str, key_id: str = "k", usage: Usage | None = None) -> Ticket:
    ticket = await _admit(core, request_id, key_id)
    assert isinstance(ticket, Ticket), ticket
    await core.charger.settle(ticket, usage or Usage(prompt_tokens=100, completion_tokens=10), RequestStatus.SUCCESS)
    return ticket


async def test_charger_rpm_limit_resets_exactly_at_the_minute_boundary(make_core: CoreFactory) -> None:
    """rpm_limit 2: the 3rd request of a minute is refused until the instant the next minute starts, with
    retry-after counting down to it."""
    core = await make_core()
    await _entity(core, EntityType.KEY, "k", extra={"rpm_limit": 2})
    core.clock.advance(0.5)
    await _served(core, "r1")
    await _served(core, "r2")
    refused = await _admit(core, "r3")
    assert isinstance(refused, RateLimited)
    assert (refused.field, refused.limit, refused.retry_after_s) == (RateLimitField.RPM, 2, 60)
    assert (refused.state.spent_nanos, refused.state.held_nanos) == (2, 0)
    core.clock.advance(59.499)
    late = await _admit(core, "r4")
    assert isinstance(late, RateLimited) and late.retry_after_s == 1
    core.clock.advance(0.001)
    assert isinstance(await _admit(core, "r5"), Ticket)


async def test_charger_restart_forgives_nothing_of_the_minute(make_core: CoreFactory) -> None:
    """After a restart the minute's requests and tokens are recounted from the ledger: the limit still refuses,
    and the counts equal what was counted before the restart."""
    core = await make_core()
    await _entity(core, EntityType.KEY, "k", extra={"rpm_limit": 3, "tpm_limit": 10_000})
    for i, completion in enumerate([5, 0, 12]):
        await _served(core, f"r{i}", usage=Usage(prompt_tokens=40, completion_tokens=completion))
    before = dict((r.field, s) for r, s in await core.charger.rate_states(await core.key("k")))
    await core.restart()
    after = dict((r.field, s) for r, s in await core.charger.rate_states(await core.key("k")))
    assert after == before
    assert (after[RateLimitField.RPM].spent_nanos, after[RateLimitField.TPM].spent_nanos) == (3, 137)
    refused = await _admit(core, "r3")
    assert isinstance(refused, RateLimited) and refused.field is RateLimitField.RPM


async def test_charger_tpm_holds_the_bound_and_settles_the_tokens_used(make_core: CoreFactory) -> None:
    """A tokens line holds prompt bound + max_tokens x n while in flight and keeps the tokens used after (an
    errored request without usage: none)."""
    core = await make_core()
    await _entity(core, EntityType.KEY, "k", extra={"tpm_limit": 1_000})
    ticket = await _admit(core, "r1", max_tokens=50)
    assert isinstance(ticket, Ticket)
    ((rate, state),) = await core.charger.rate_states(await core.key("k"))
    assert (rate.field, state.spent_nanos, state.held_nanos) == (RateLimitField.TPM, 0, 150)
    await core.charger.settle(ticket, Usage(prompt_tokens=30, completion_tokens=20), RequestStatus.SUCCESS)
    failed = await _admit(core, "r2")
    assert isinstance(failed, Ticket)
    await core.charger.settle(failed, None, RequestStatus.ERROR)
    ((_, state),) = await core.charger.rate_states(await core.key("k"))
    assert (state.spent_nanos, state.held_nanos) == (50, 0)


async def test_charger_parallel_slot_of_a_crashed_request_frees_at_hold_expiry(make_core: CoreFactory) -> None:
    """max_parallel_requests 1: a request that never settles (crash) holds its slot only until its hold
    expires; refusals meanwhile say retry after 1 s."""
    core = await make_core()
    await _entity(core, EntityType.KEY, "k", extra={"max_parallel_requests": 1})
    assert isinstance(await _admit(core, "crashed"), Ticket)
    refused = await _admit(core, "r2")
    assert isinstance(refused, RateLimited)
    assert (refused.field, refused.retry_after_s, refused.reset_at_s) == (RateLimitField.PARALLEL, 1, None)
    core.clock.advance(HOLD_TTL_S)
    assert isinstance(await _admit(core, "r3"), Ticket)


async def test_charger_strict_mode_clamps_only_the_budget(make_core: CoreFactory) -> None:
    """Strict mode: rate lines admit exactly their limit and hold their own amounts; the budget hold is still
    clamped to the window's headroom."""
    core = await make_core(BudgetMode.STRICT)
    await _entity(core, EntityType.KEY, "k", primary_window=window("1h", 2_000), extra={"rpm_limit": 1})
    ticket = await _admit(core, "r1", max_tokens=1_000)  # at most 4_650 nanos: clamped to the window's 2_000
    assert isinstance(ticket, Ticket)
    assert ticket.hold_nanos == 2_000 and ticket.max_tokens_to_send is not None and ticket.max_tokens_to_send < 1_000
    assert isinstance(await _admit(core, "r2"), Refusal)  # the budget's headroom is held: it refuses first


async def test_charger_user_limit_applies_to_personal_keys_only(make_core: CoreFactory) -> None:
    """A user's rpm_limit counts the requests charged to the user: their personal keys. A team key of the same
    user charges the team and the team member, never the user, so the user's limit does not apply to it."""
    core = await make_core()
    await _entity(core, EntityType.USER, "u", extra={"rpm_limit": 1})
    await _entity(core, EntityType.TEAM, "t")
    await _entity(core, EntityType.KEY, "personal", user_id="u")
    await _entity(core, EntityType.KEY, "team-key", user_id="u", team_id="t")
    await _served(core, "p1", "personal")
    refused = await _admit(core, "p2", "personal")
    assert isinstance(refused, RateLimited) and refused.entity.type is EntityType.USER
    await _served(core, "t1", "team-key")
    await _served(core, "t2", "team-key")


async def test_charger_budget_object_limits_are_inherited_per_field(make_core: CoreFactory) -> None:
    """An entity with a budget_id takes each rate limit it does not set itself from the budget object."""
    core = await make_core()
    await _entity(core, EntityType.BUDGET, "b", extra={"rpm_limit": 1, "max_parallel_requests": 5})
    team = await _entity(core, EntityType.TEAM, "t", budget_id="b", extra={"max_parallel_requests": 1})
    limits = await core.charger.rate_limits(team)
    assert dict(limits.limits) == {RateLimitField.RPM: 1, RateLimitField.PARALLEL: 1}
    await _entity(core, EntityType.KEY, "k", team_id="t")
    held = await _admit(core, "r1")
    assert isinstance(held, Ticket)
    refused = await _admit(core, "r2")
    assert isinstance(refused, RateLimited)
    assert (refused.entity.type, refused.field) == (EntityType.TEAM, RateLimitField.RPM)
