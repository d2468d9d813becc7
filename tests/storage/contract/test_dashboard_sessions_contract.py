"""Dashboard sessions on SQLite and PostgreSQL: revocation seen by every instance, idle and absolute expiry, the
master key's sessions bound to the current master key, and nothing in the table that opens a session or helps
guess a key (issue 12: logout did not revoke; the cookie carried sha256(master key))."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgergate.domain.dashboard_sessions import TOUCH_INTERVAL_S, PrincipalKind, SessionPolicy
from ledgergate.services.dashboard_sessions import DashboardSessions, master_fingerprint
from ledgergate.storage.sql.dashboard_sessions import SqlDashboardSessions, dashboard_sessions
from tests.storage.contract.backends import ManualClock
from tests.storage.contract.services import SqlUnderTest

MASTER = "sk-weak-master"
POLICY = SessionPolicy(idle_timeout_s=600, max_age_s=3600)


@pytest.fixture
async def second_engine(sql_db: SqlUnderTest) -> AsyncIterator[AsyncEngine]:
    """Another instance's engine on the same database."""
    engine = sql_db.engine_factory()
    try:
        yield engine
    finally:
        await engine.dispose()


def _sessions(engine: AsyncEngine, clock: ManualClock, master_key: str | None = MASTER) -> DashboardSessions:
    return DashboardSessions(SqlDashboardSessions(engine), clock, POLICY, master_key)


async def test_logout_on_one_instance_revokes_the_session_on_every_instance(
    sql_db: SqlUnderTest, second_engine: AsyncEngine, clock: ManualClock
) -> None:
    """Bug: logout only deleted the browser's cookie, a copied cookie kept working. Now the row is gone for all."""
    first, second = _sessions(sql_db.engine, clock), _sessions(second_engine, clock)
    issued = await first.issue(PrincipalKind.KEY, "key-1")
    assert (await second.resolve(issued.session_id)) == issued.record
    await first.revoke(issued.session_id)
    assert await second.resolve(issued.session_id) is None
    assert await first.resolve(issued.session_id) is None


async def test_idle_session_expires_and_activity_keeps_it_alive(sql_db: SqlUnderTest, clock: ManualClock) -> None:
    sessions = _sessions(sql_db.engine, clock)
    used = await sessions.issue(PrincipalKind.KEY, "key-1")
    idle = await sessions.issue(PrincipalKind.KEY, "key-1")
    for _ in range(3):  # 3 x 500 s > the 600 s idle timeout, but never 600 s without a request
        clock.now += 500
        assert await sessions.resolve(used.session_id) is not None
    assert await sessions.resolve(idle.session_id) is None
    clock.now += POLICY.idle_timeout_s
    assert await sessions.resolve(used.session_id) is None


async def test_session_ends_at_its_absolute_age_however_active(sql_db: SqlUnderTest, clock: ManualClock) -> None:
    sessions = _sessions(sql_db.engine, clock)
    issued = await sessions.issue(PrincipalKind.KEY, "key-1")
    while clock.now + 300 < issued.record.expires_at_s:
        clock.now += 300
        assert await sessions.resolve(issued.session_id) is not None
    clock.now = issued.record.expires_at_s
    assert await sessions.resolve(issued.session_id) is None


async def test_activity_is_written_at_most_once_per_touch_interval(sql_db: SqlUnderTest, clock: ManualClock) -> None:
    sessions = _sessions(sql_db.engine, clock)
    issued = await sessions.issue(PrincipalKind.KEY, "key-1")
    clock.now += TOUCH_INTERVAL_S - 1
    assert (await sessions.resolve(issued.session_id)) == issued.record  # not written yet
    clock.now += 1
    await sessions.resolve(issued.session_id)
    touched = await sessions.resolve(issued.session_id)
    assert touched is not None and touched.last_seen_s == int(clock.now)


async def test_changing_the_master_key_ends_the_master_key_sessions(
    sql_db: SqlUnderTest, second_engine: AsyncEngine, clock: ManualClock
) -> None:
    issued = await _sessions(sql_db.engine, clock, MASTER).issue_for_master()
    assert await _sessions(second_engine, clock, MASTER).resolve(issued.session_id) is not None
    assert await _sessions(second_engine, clock, "sk-new-master").resolve(issued.session_id) is None
    # ended for good: going back to the old key does not revive it
    assert await _sessions(sql_db.engine, clock, MASTER).resolve(issued.session_id) is None


async def test_revoking_a_key_ends_all_its_sessions_only(sql_db: SqlUnderTest, clock: ManualClock) -> None:
    sessions = _sessions(sql_db.engine, clock)
    gone = [await sessions.issue(PrincipalKind.KEY, "key-1") for _ in range(2)]
    kept = await sessions.issue(PrincipalKind.KEY, "key-2")
    assert await sessions.revoke_key("key-1") == 2
    assert [await sessions.resolve(s.session_id) for s in gone] == [None, None]
    assert await sessions.resolve(kept.session_id) is not None


async def test_stored_sessions_give_neither_a_cookie_nor_a_fast_master_key_hash(
    sql_db: SqlUnderTest, clock: ManualClock
) -> None:
    """Bug: the master-key session carried sha256(master key), open to offline guessing of a weak key. Now the
    cookie is 256 random bits, the table keeps only its sha256 and a scrypt fingerprint of the master key."""
    sessions = _sessions(sql_db.engine, clock)
    first, second = await sessions.issue_for_master(), await sessions.issue_for_master()
    assert first.session_id != second.session_id and len(first.session_id) >= 43
    master_sha256 = hashlib.sha256(MASTER.encode()).hexdigest()
    async with sql_db.engine.connect() as connection:
        rows = (await connection.execute(select(dashboard_sessions))).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert first.session_id not in stored and second.session_id not in stored
    assert master_sha256 not in stored and MASTER not in stored
    assert hashlib.sha256(first.session_id.encode()).hexdigest() in stored
    assert {row.principal_id for row in rows} == {master_fingerprint(MASTER)}


@pytest.mark.parametrize(
    "presented",
    ["", "x" * 65, "\u00e9t\u00e9", "' OR 1=1 --", "a.b.c.d", None],
)
async def test_odd_or_forged_session_ids_are_refused(
    sql_db: SqlUnderTest, clock: ManualClock, presented: str | None
) -> None:
    sessions = _sessions(sql_db.engine, clock)
    await sessions.issue(PrincipalKind.KEY, "key-1")
    assert await sessions.resolve(presented) is None
    await sessions.revoke(presented)  # no error either
