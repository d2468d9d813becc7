"""Plumbing shared by the dashboard's routes: templates, the logged-in viewer, forms with CSRF, flash messages.

Jinja2 is the template engine Starlette supports out of the box (``starlette.templating``); with plain CSS and a
few lines of JavaScript it keeps the dashboard inside the Python package, served by the gateway itself.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

import jinja2
import orjson
from fastapi import Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ledgergate.container import Container
from ledgergate.dashboard import formatting
from ledgergate.dashboard.session import (
    delete_cookie,
    principal_for_session,
    read_cookie,
    session_id,
    sessions,
    set_cookie,
)
from ledgergate.dashboard.viewer import Viewer, viewer_for
from ledgergate.services.dashboard_sessions import same_text

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"
FLASH_COOKIE = "ledgergate_flash"
MAX_FORM_BYTES = 256 * 1024

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(PACKAGE_DIR / "templates"),
    autoescape=jinja2.select_autoescape(["html", "svg"]),
    undefined=jinja2.StrictUndefined,  # a typo in a template fails the tests instead of rendering blank
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    usd=formatting.usd_text,
    usd_exact=formatting.usd_exact,
    utc=formatting.iso_utc,
    pct=lambda value: f"{value:.0f}%",
    urlpart=lambda value: quote(str(value), safe=""),
)
templates = Jinja2Templates(env=_env)


class LoginRequired(Exception):
    """No valid session: the handler redirects to the log-in page."""


class PageError(Exception):
    """A request the dashboard refuses; rendered as an HTML error page with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def container_of(request: Request) -> Container:
    services: Container = request.app.state.container
    return services


def base_path(request: Request) -> str:
    """The dashboard's URL prefix, honouring a reverse proxy's root path."""
    return f"{request.scope.get('root_path', '')}/ui"


async def current_viewer(request: Request) -> Viewer:
    container = container_of(request)
    store = sessions(request)
    presented = session_id(request)
    record = await store.resolve(presented)
    if record is None:
        raise LoginRequired()
    principal = await principal_for_session(container, record)
    viewer = await viewer_for(container, principal, record.csrf_token) if principal is not None else None
    if viewer is None or not viewer.may_log_in:
        # The key was blocked, deleted, rotated or expired, or is no admin any more: the session ends for good,
        # so unblocking the key later does not bring it back.
        await store.revoke(presented)
        raise LoginRequired()
    return viewer


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]


class Form:
    """An urlencoded form body, fields in order (budget window rows rely on it)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.pairs)


async def read_form(request: Request, viewer: Viewer | None) -> Form:
    """Parse the body; for a logged-in viewer also check its CSRF token (403 when it is missing or stale)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "the form is too large")
    form = Form(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    # The token is the session's own random one (kept server-side): a cross-site page can neither read nor guess it.
    if viewer is not None and not (viewer.csrf_token and same_text(viewer.csrf_token, form.get("csrf_token"))):
        raise PageError(403, "this form has expired or did not come from the dashboard; reload the page")
    return form


def flash(response: Response, request: Request, level: str, message: str) -> Response:
    """Show ``message`` on the next page rendered (after a redirect)."""
    value = base64.urlsafe_b64encode(orjson.dumps({"level": level, "message": message})).decode()
    set_cookie(request, response, FLASH_COOKIE, value, 60, samesite="strict")
    return response


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = read_cookie(request, FLASH_COOKIE)
    if not raw:
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if isinstance(value, dict) and isinstance(value.get("message"), str) and isinstance(value.get("level"), str):
        return {"level": value["level"], "message": value["message"]}
    return None


def redirect(request: Request, path: str, *, level: str | None = None, message: str | None = None) -> Response:
    response = RedirectResponse(f"{base_path(request)}{path}", status_code=303)
    if level and message:
        flash(response, request, level, message)
    return response


def render(
    request: Request,
    viewer: Viewer | None,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
) -> Response:
    container = container_of(request)
    message = _read_flash(request)
    page: dict[str, Any] = {
        "ui": base_path(request),
        "viewer": viewer,
        "now_s": container.clock.now_s(),
        "flash": message,
        "relative": formatting.relative_time,
        "active": "",
        **context,
    }
    # Every page is personal (or carries a CSRF token): no cache, shared or private, may keep a copy.
    headers = {"cache-control": "no-store"}
    response = templates.TemplateResponse(request, template, page, status_code=status, headers=headers)
    if message is not None:
        delete_cookie(request, response, FLASH_COOKIE)
    return response


async def login_required_page(request: Request, _: Exception) -> Response:
    target = request.url.path
    if request.url.query:
        target += f"?{request.url.query}"
    location = f"{base_path(request)}/login?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        # htmx follows redirects inside the swapped fragment; it must reload the whole page instead.
        return Response(status_code=204, headers={"hx-redirect": location})
    return RedirectResponse(location, status_code=303)


async def error_page(request: Request, exc: Exception) -> Response:
    status, message = (exc.status, exc.message) if isinstance(exc, PageError) else (500, "unexpected error")
    return render(request, None, "error.html", {"status": status, "message": message}, status=status)
