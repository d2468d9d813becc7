"""Every error leaves as ``{"error": {"message", "type", "param", "code"}}``; no input produces a 5xx."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ledgergate.api.body_limits import BODY_TOO_LARGE_TYPE, BodyTooLarge
from ledgergate.db_failures import is_database_failure
from ledgergate.domain.errors import EntityConflict, InvalidInput
from ledgergate.domain.ports import CounterStoreUnavailable
from ledgergate.services.body_fields import UNKNOWN_FIELD
from ledgergate.services.errors import ServiceError

log = logging.getLogger("ledgergate.api")


def error_body(message: str, error_type: str, status: int, param: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": str(status), **extra}}


def error_response(
    status: int,
    message: str,
    error_type: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    return Response(
        orjson.dumps(error_body(message, error_type, status, param, **extra)),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


class ApiError(Exception):
    """Raised by the HTTP layer only (auth, malformed requests); services raise ``ServiceError``."""

    def __init__(self, status: int, message: str, error_type: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param


_TYPE_TAGS = re.compile(r"^(float|int|str|bool|dict|list|none|function-\w+|[a-z_]+\[.*\])$")


def _field_name(location: tuple[Any, ...]) -> str:
    """``('body', 'max_budget', 'float')`` -> ``max_budget``: pydantic's union branch tags are not fields."""
    parts = [
        str(part) for part in location if part not in ("body", "query", "path") and not _TYPE_TAGS.match(str(part))
    ]
    return ".".join(parts) or "body"


def validation_field(error: Mapping[str, Any]) -> str:
    """The field a pydantic error is about; an unknown field's error is raised by its parent, which names it."""
    field = _field_name(tuple(error.get("loc", ())))
    unknown = (error.get("ctx") or {}).get("field") if error.get("type") == UNKNOWN_FIELD else None
    if unknown is None:
        return field
    return str(unknown) if field == "body" else f"{field}.{unknown}"


def validation_message(error: Mapping[str, Any]) -> str:
    """``max_budget: Input should be a valid number``; an unknown field's message names it already."""
    if error.get("type") == UNKNOWN_FIELD:
        prefix = _field_name(tuple(error.get("loc", ())))
        return str(error.get("msg")) if prefix == "body" else f"{prefix}: {error.get('msg')}"
    return f"{validation_field(error)}: {error.get('msg')}"


# Registered with FastAPI by class; ``is_database_failure`` decides for the rest (asyncpg's own errors, a
# DBAPIError whose connection was invalidated, sqlite "database is locked", timeouts).
_DATABASE_FAILURES = (
    OperationalError,
    InterfaceError,
    OSError,
    DBAPIError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def exception_response(exc: Exception) -> Response:
    """The error response for an exception escaping a route: the admin API's handlers and the LLM routes (which
    run outside FastAPI's exception middleware) answer alike."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.message, exc.error_type, exc.param)
    if isinstance(exc, BodyTooLarge):
        return error_response(413, str(exc.detail), BODY_TOO_LARGE_TYPE, "body")
    if isinstance(exc, ServiceError):
        return error_response(exc.status_code, exc.message, exc.error_type, exc.param)
    if isinstance(exc, InvalidInput):
        return error_response(400, f"{exc.field}: {exc.message}", "invalid_request_error", exc.field)
    if isinstance(exc, EntityConflict):
        return error_response(409, str(exc), "conflict_error")
    if isinstance(exc, CounterStoreUnavailable):
        # Fail closed: without its hold a request is not forwarded, whatever budget it has left.
        log.warning("counter store unavailable: %s", exc)
        return error_response(
            503,
            "the budget counter store is unavailable (no LLM request is admitted without its hold); retry shortly",
            "service_unavailable",
            headers={"retry-after": "1"},
        )
    if is_database_failure(exc):
        # Connection-level failures (refused, reset, timed out): the database, not the request, is at fault.
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return error_response(
            503, "the database is unavailable; retry shortly", "service_unavailable", headers={"retry-after": "1"}
        )
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal error; see the gateway log", "internal_error")


def install_error_handlers(app: FastAPI) -> None:
    async def _known(_: Request, exc: Exception) -> Response:
        return exception_response(exc)

    for known in (ApiError, ServiceError, InvalidInput, EntityConflict, CounterStoreUnavailable, *_DATABASE_FAILURES):
        app.add_exception_handler(known, _known)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        details = "; ".join(validation_message(error) for error in errors[:5])
        return error_response(400, details, "invalid_request_error", validation_field(first))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc, BodyTooLarge):
            return exception_response(exc)
        error_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return error_response(exc.status_code, str(exc.detail), error_type)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        return exception_response(exc)
