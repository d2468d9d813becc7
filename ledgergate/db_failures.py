"""Which exceptions mean "the database is unreachable or busy right now" rather than "this statement is wrong".

A database failure is worth retrying on a fresh connection (the ledger's batch is idempotent: request id unique,
first record wins) and maps to 503 when nothing has reached an upstream yet. Anything else is a bug or a refusal
by the server and is surfaced as is.
"""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# SQLSTATE classes of a connection that is gone or a server that cannot serve now: 08 connection exception,
# 53 insufficient resources (too many connections, disk full), 57 operator intervention (admin shutdown,
# cannot connect now, crash shutdown, query canceled on shutdown), 58 system error (I/O error).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "58")

# SQLite result codes of a locked, busy or failing file: the write may pass later (another writer, a full disk).
_SQLITE_TRANSIENT_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)

_ALWAYS_TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,  # SQLAlchemy's wrapper of the driver's OperationalError (sqlite "database is locked", ...)
    InterfaceError,  # connection closed under the driver
    PoolTimeoutError,  # no pooled connection free within the pool timeout
    asyncpg.InterfaceError,  # includes asyncpg's "connection is closed" / "cannot perform operation"
    asyncpg.exceptions.ConnectionDoesNotExistError,
    # "cannot switch to state ...; another operation is in progress": the protocol of a connection killed
    # mid-operation is left inconsistent; the connection is unusable, the database may be fine.
    asyncpg.exceptions.InternalClientError,  # the backend was terminated (pg_terminate_backend, restart)
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    ConnectionError,  # refused, reset, aborted, broken pipe
    TimeoutError,  # connect or statement timeout (asyncio.TimeoutError is TimeoutError)
    asyncio.TimeoutError,
    OSError,  # the socket layer (host unreachable, ...)
)


def is_database_failure(exc: BaseException, _depth: int = 0) -> bool:
    """True for an error that says the database could not be reached or could not take the write now."""
    if _depth > 8:  # a cyclic or absurdly long cause chain: not ours to classify
        return False
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        original = exc.orig
        return original is not None and original is not exc and is_database_failure(original, _depth + 1)
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:  # very old SQLite: only the message tells
            return "locked" in str(exc) or "disk" in str(exc)
        return (code & 0xFF) in _SQLITE_TRANSIENT_CODES  # extended codes carry the primary code in the low byte
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES
    if isinstance(exc, _ALWAYS_TRANSIENT):
        return True
    cause = exc.__cause__
    return cause is not None and cause is not exc and is_database_failure(cause, _depth + 1)
