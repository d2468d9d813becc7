"""Serve the dashboard at ``/ui`` from the gateway's own app: no separate server, no CDN (it often runs offline)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ledgergate.dashboard import auth_routes, form_routes, page_routes
from ledgergate.dashboard.security_headers import DashboardSecurityHeaders
from ledgergate.dashboard.web import STATIC_DIR, LoginRequired, PageError, error_page, login_required_page


def mount_dashboard(app: FastAPI) -> None:
    # The static mount and the log-in routes go before the page routes, whose /ui/{slug} would match them too.
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    for routes in (auth_routes, form_routes, page_routes):
        app.include_router(routes.router)
    app.add_exception_handler(LoginRequired, login_required_page)
    app.add_exception_handler(PageError, error_page)
    # Outermost, so that redirects, error pages and static files get the headers too.
    app.add_middleware(DashboardSecurityHeaders)
