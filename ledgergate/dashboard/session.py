"""Dashboard sessions: a signed, HttpOnly cookie naming the logged-in key by its hash, never its secret.

The key is re-read on every request, so blocking or deleting it ends its sessions at once. The signing secret
is derived from the master key when there is one, so that every instance behind a load balancer (and a
restarted one) accepts the same cookies, and rotating the master key ends every session; without a master key
it is random per process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from starlette.requests import Request

from ledgergate.api.auth import Principal, Role
from ledgergate.api.errors import ApiError
from ledgergate.container import Container
from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity

COOKIE_NAME = "ledgergate_session"
SESSION_TTL_S = 12 * 3600
_VERSION = "v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _same(a: str, b: str) -> bool:
    # compare_digest refuses non-ASCII str; cookies and form fields may carry anything.
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


class Sessions:
    def __init__(self, master_key: str | None) -> None:
        if master_key:
            self._secret = hashlib.sha256(b"ledgergate-dashboard-session\x00" + master_key.encode()).digest()
        else:
            self._secret = secrets.token_bytes(32)
        self.master_key_id = hashlib.sha256(master_key.encode()).hexdigest() if master_key else None

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, key_id: str, now_s: float) -> str:
        payload = f"{_VERSION}.{key_id}.{int(now_s) + SESSION_TTL_S}"
        return f"{payload}.{self._sign(payload)}"

    def key_id(self, cookie: str | None, now_s: float) -> str | None:
        """The key a valid, unexpired cookie names; ``None`` for anything else."""
        if not cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not _same(signature, self._sign(payload)):
            return None
        version, _, rest = payload.partition(".")
        key_id, _, expires = rest.rpartition(".")
        if version != _VERSION or not expires.isdigit() or int(expires) <= now_s:
            return None
        return key_id

    def csrf_token(self, cookie: str) -> str:
        """Forms carry this; a cross-site page cannot read it, so it cannot forge a dashboard write."""
        return self._sign(f"csrf.{cookie}")

    def csrf_ok(self, cookie: str | None, token: str | None) -> bool:
        return bool(cookie and token) and _same(self.csrf_token(cookie or ""), token or "")


def sessions(request: Request) -> Sessions:
    state = request.app.state
    found: Sessions | None = getattr(state, "dashboard_sessions", None)
    if found is None:
        container: Container = state.container
        found = Sessions(container.config.settings.master_key)
        state.dashboard_sessions = found
    return found


async def principal_for_secret(container: Container, secret: str) -> Principal:
    """Log-in check: the API's own authentication of ``Authorization: Bearer <secret>`` (raises ``ApiError``)."""
    secret = secret.strip()
    if not secret.isascii() or not secret.isprintable():
        # No header could carry it, so no key can have it (and the authenticator's compare_digest needs ASCII).
        raise ApiError(401, "invalid API key", "authentication_error")
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"authorization", f"Bearer {secret}".encode())]}
    return await container.authenticator.principal(Request(scope))


async def principal_for_key_id(container: Container, sessions: Sessions, key_id: str) -> Principal | None:
    """The principal a session's key stands for now, or ``None`` if the key is gone, blocked or expired."""
    if sessions.master_key_id is not None and _same(key_id, sessions.master_key_id):
        return Principal(Role.PROXY_ADMIN, Entity(EntityType.KEY, key_id, alias="master_key"), is_master=True)
    key = await container.directory.get(EntityType.KEY, key_id)
    if key is None or key.blocked or key.is_expired(container.clock.now_s()):
        return None
    return await container.authenticator.principal_for_key(key)
