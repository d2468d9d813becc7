"""Log-in and log-out. The key is checked by the API's own authenticator; the cookie holds only its hash."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ledgergate.api.errors import ApiError
from ledgergate.dashboard.session import COOKIE_NAME, SESSION_TTL_S, principal_for_secret, sessions
from ledgergate.dashboard.viewer import viewer_for
from ledgergate.dashboard.web import CurrentViewer, base_path, container_of, read_form, render

router = APIRouter(include_in_schema=False)


def _safe_next(request: Request, target: str) -> str:
    """Only a dashboard path: an open redirect would make the log-in page a phishing tool."""
    base = base_path(request)
    if target.startswith(f"{base}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{base}/"


@router.get("/ui/login")
async def login_page(request: Request, next: str = "") -> Response:
    return render(request, None, "login.html", {"next": next, "error": None})


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await read_form(request, None)
    container = container_of(request)
    secret = form.get("key").strip()
    target = form.get("next")
    error = None
    try:
        principal = await principal_for_secret(container, secret) if secret else None
    except ApiError as exc:
        principal, error = None, exc.message
    if principal is None:
        error = error or "enter the master key or an admin's key"
        return render(request, None, "login.html", {"next": target, "error": error}, status=401)
    viewer = await viewer_for(container, principal)
    if not viewer.may_log_in:
        error = "this key may not use the dashboard: log in with the master key, a proxy admin's or a team admin's key"
        return render(request, None, "login.html", {"next": target, "error": error}, status=403)
    response = RedirectResponse(_safe_next(request, target), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        sessions(request).issue(principal.key.id, container.clock.now_s()),
        max_age=SESSION_TTL_S,
        path=base_path(request),
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",
    )
    return response


@router.post("/ui/logout")
async def logout(request: Request, viewer: CurrentViewer) -> Response:
    await read_form(request, viewer)
    response = RedirectResponse(f"{base_path(request)}/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path=base_path(request))
    return response
