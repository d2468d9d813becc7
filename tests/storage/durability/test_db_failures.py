"""Which errors count as "the database is down" (retried, then spilled; 503 before any upstream) (issue 12)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import orjson
from sqlalchemy.exc import DBAPIError, IntegrityError

from ledgergate.api.errors import exception_response
from ledgergate.db_failures import is_database_failure


def test_asyncpg_connection_errors_are_database_failures_issue_12() -> None:
    """On main ``ConnectionDoesNotExistError`` (a pg_terminate_backend) was not one: 500 and a lost record."""
    assert is_database_failure(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"))
    assert is_database_failure(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    assert is_database_failure(asyncpg.exceptions.CannotConnectNowError("the database system is starting up"))
    assert is_database_failure(asyncpg.exceptions.TooManyConnectionsError("too many clients"))
    assert is_database_failure(ConnectionRefusedError(111, "refused"))
    assert is_database_failure(TimeoutError())


def test_an_invalidated_sqlalchemy_connection_is_a_database_failure() -> None:
    wrapped = DBAPIError("INSERT", {}, Exception("gone"), connection_invalidated=True)
    assert is_database_failure(wrapped)
    cause = DBAPIError("INSERT", {}, asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert is_database_failure(cause)


def test_sqlite_database_is_locked_is_a_failure_but_a_wrong_statement_is_not(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")
        try:
            other.execute("INSERT INTO t VALUES (1)")
        except sqlite3.OperationalError as locked:
            assert "locked" in str(locked)
            assert is_database_failure(locked)
        else:
            raise AssertionError("the write lock was not held")
        holder.execute("ROLLBACK")
        try:
            other.execute("SELECT * FROM no_such_table")
        except sqlite3.OperationalError as wrong:
            assert not is_database_failure(wrong)
    finally:
        holder.close()
        other.close()


def test_a_refused_statement_is_not_a_database_failure() -> None:
    """A constraint violation is a bug to surface, not an outage to retry or spill."""
    assert not is_database_failure(IntegrityError("INSERT", {}, asyncpg.exceptions.UniqueViolationError("dup")))
    assert not is_database_failure(asyncpg.exceptions.UniqueViolationError("dup"))
    assert not is_database_failure(ValueError("bad"))


def test_a_terminated_connection_before_forwarding_answers_503_not_500_issue_12() -> None:
    response = exception_response(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert orjson.loads(bytes(response.body))["error"]["type"] == "service_unavailable"
