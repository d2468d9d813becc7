"""Log-in and log-out. The key is checked by the API's own authenticator; the cookie holds only a random id.

The log-in form carries a CSRF token too (double submit: the form's token must equal a random HttpOnly,
SameSite=Strict cookie set with the form), so another site cannot log a browser in to an attacker's session.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ledgergate.dashboard.session import (
    delete_cookie,
    principal_for_secret,
    read_cookie,
    session_id,
    sessions,
    set_cookie,
)
from ledgergate.dashboard.viewer import viewer_for
from ledgergate.dashboard.web import CurrentViewer, base_path, container_of, read_form, render
from ledgergate.domain.dashboard_sessions import COOKIE_BASE_NAME, LOGIN_CSRF_BASE_NAME, PrincipalKind
from ledgergate.services.dashboard_sessions import same_text
from ledgergate.services.errors import Unauthenticated

router = APIRouter(include_in_schema=False)

LOGIN_FORM_TTL_S = 3600
MAX_KEY_CHARS = 4096  # longer than any key: refused before it is hashed or looked up
_EXPIRED_FORM = "this log-in form has expired or did not come from the dashboard; enter the key again"


def _safe_next(request: Request, target: str) -> str:
    """Only a dashboard path: an open redirect would make the log-in page a phishing tool."""
    base = base_path(request)
    if target.startswith(f"{base}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{base}/"


def _login_page(request: Request, target: str, error: str | None, status: int) -> Response:
    """The form with a fresh token, and the same token in the cookie it is checked against."""
    token = secrets.token_urlsafe(32)
    context = {"next": target, "error": error, "login_csrf_token": token}
    response = render(request, None, "login.html", context, status=status)
    set_cookie(request, response, LOGIN_CSRF_BASE_NAME, token, LOGIN_FORM_TTL_S, samesite="strict")
    return response


@router.get("/ui/login")
async def login_page(request: Request, next: str = "") -> Response:
    return _login_page(request, next, None, 200)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await read_form(request, None)
    container = container_of(request)
    secret = form.get("key").strip()
    target = form.get("next")
    expected = read_cookie(request, LOGIN_CSRF_BASE_NAME)
    if not expected or not same_text(expected, form.get("csrf_token")):
        return _login_page(request, target, _EXPIRED_FORM, 403)
    error = None
    try:
        principal = await principal_for_secret(container, secret) if 0 < len(secret) <= MAX_KEY_CHARS else None
    except Unauthenticated as exc:
        principal, error = None, exc.message
    if principal is None:
        return _login_page(request, target, error or "enter the master key or an admin's key", 401)
    viewer = await viewer_for(container, principal)
    if not viewer.may_log_in:
        error = "this key may not use the dashboard: log in with the master key, a proxy admin's or a team admin's key"
        return _login_page(request, target, error, 403)
    store = sessions(request)
    await store.revoke(session_id(request))  # a session planted before the log-in is never carried over
    if principal.is_master:
        issued = await store.issue_for_master()
    else:
        issued = await store.issue(PrincipalKind.KEY, principal.key.id)
    response = RedirectResponse(_safe_next(request, target), status_code=303)
    set_cookie(request, response, COOKIE_BASE_NAME, issued.session_id, store.policy.max_age_s)
    delete_cookie(request, response, LOGIN_CSRF_BASE_NAME)
    return response


@router.post("/ui/logout")
async def logout(request: Request, viewer: CurrentViewer) -> Response:
    await read_form(request, viewer)
    await sessions(request).revoke(session_id(request))
    response = RedirectResponse(f"{base_path(request)}/login", status_code=303)
    delete_cookie(request, response, COOKIE_BASE_NAME)
    return response
