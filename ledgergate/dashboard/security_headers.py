"""Security headers on every dashboard response (pages, redirects, errors, static files).

The Content-Security-Policy fits what the templates load: the dashboard's own CSS, scripts (htmx and
dashboard.js; no inline script, eval or inline style), SVG favicon and htmx requests, nothing from elsewhere.
Pages may not be framed (clickjacking) and no page is cached: each is personal or carries a CSRF token.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_ALWAYS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
_SET_HERE = {name for name, _ in _ALWAYS} | {b"cache-control"}
_STATIC_PREFIX = "/ui/static/"


def _dashboard_path(scope: Scope) -> str | None:
    """The path below the app's root (a reverse proxy's prefix removed) when it is the dashboard's, else None."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path if path == "/ui" or path.startswith("/ui/") else None


class DashboardSecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _dashboard_path(scope) if scope["type"] == "http" else None
        if path is None:
            await self.app(scope, receive, send)
            return
        # Static files keep their validators (ETag, Last-Modified): they are public and the same for everyone.
        extra = _ALWAYS if path.startswith(_STATIC_PREFIX) else (*_ALWAYS, (b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(name, value) for name, value in message.get("headers", []) if name.lower() not in _SET_HERE]
                if path.startswith(_STATIC_PREFIX):
                    kept += [(n, v) for n, v in message.get("headers", []) if n.lower() == b"cache-control"]
                message = {**message, "headers": [*kept, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
