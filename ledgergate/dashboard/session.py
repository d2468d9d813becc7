"""Dashboard sessions over HTTP: which cookie carries the session, its flags, and who it stands for now.

The cookie holds only a random id (``services/dashboard_sessions.py``); the principal, the CSRF token and the
expiry live in the database, so logging out ends a session on every instance at once
(docs/decisions/0008-dashboard-sessions.md).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ledgergate.container import Container
from ledgergate.domain.charging import EntityType
from ledgergate.domain.dashboard_sessions import (
    COOKIE_BASE_NAME,
    PrincipalKind,
    SessionRecord,
    cookie_is_secure,
    cookie_name,
)
from ledgergate.domain.entities import Entity
from ledgergate.domain.principals import Principal, Role
from ledgergate.services.dashboard_sessions import DashboardSessions
from ledgergate.services.errors import Unauthenticated

MASTER_ALIAS = "master_key"


def sessions(request: Request) -> DashboardSessions:
    container: Container = request.app.state.container
    return container.dashboard_sessions


def cookie_path(request: Request, secure: bool) -> str:
    # A __Host- cookie must have Path=/; otherwise the cookie stays within the dashboard.
    return "/" if secure else f"{request.scope.get('root_path', '')}/ui"


def is_secure(request: Request) -> bool:
    container: Container = request.app.state.container
    mode = container.config.settings.dashboard_secure_cookies
    return cookie_is_secure(mode, request.url.scheme, request.headers.get("x-forwarded-proto"))


def set_cookie(request: Request, response: Response, base_name: str, value: str, max_age_s: int, **flags: str) -> None:
    secure = is_secure(request)
    response.set_cookie(
        cookie_name(base_name, secure),
        value,
        max_age=max_age_s,
        path=cookie_path(request, secure),
        httponly=True,
        secure=secure,
        samesite=flags.get("samesite", "lax"),  # type: ignore[arg-type]
    )


def read_cookie(request: Request, base_name: str) -> str | None:
    """Only the cookie named for this request's security: a plain-HTTP attacker cannot plant a __Host- one."""
    return request.cookies.get(cookie_name(base_name, is_secure(request)))


def delete_cookie(request: Request, response: Response, base_name: str) -> None:
    secure = is_secure(request)
    response.delete_cookie(
        cookie_name(base_name, secure), path=cookie_path(request, secure), secure=secure, httponly=True
    )


def session_id(request: Request) -> str | None:
    return read_cookie(request, COOKIE_BASE_NAME)


async def principal_for_secret(container: Container, secret: str) -> Principal:
    """Log-in check: the API's own authentication of ``Authorization: Bearer <secret>`` (raises ``Unauthenticated``)."""
    secret = secret.strip()
    if not secret.isascii() or not secret.isprintable():
        # No header could carry it, so no key can have it (and the authenticator's compare_digest needs ASCII).
        raise Unauthenticated("invalid API key")
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"authorization", f"Bearer {secret}".encode())]}
    return await container.authenticator.principal(Request(scope))


async def principal_for_session(container: Container, record: SessionRecord) -> Principal | None:
    """The principal a live session stands for now, or ``None`` if its key is gone, blocked or expired."""
    if record.principal_kind is PrincipalKind.MASTER:
        # DashboardSessions.resolve has checked that the session was opened with the current master key.
        return Principal(Role.PROXY_ADMIN, Entity(EntityType.KEY, MASTER_ALIAS, alias=MASTER_ALIAS), is_master=True)
    key = await container.directory.get(EntityType.KEY, record.principal_id)
    if key is None or key.blocked or key.is_expired(container.clock.now_s()):
        return None
    return await container.authenticator.principal_for_key(key)
