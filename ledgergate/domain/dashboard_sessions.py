"""Rules of dashboard sessions: when a session is still alive, when to record activity, how its cookie is flagged.

A session is an opaque random id held by the browser; everything it stands for (who logged in, its CSRF token,
its times) lives server-side (docs/decisions/0008-dashboard-sessions.md). This module decides; the storage and
the HTTP layer only carry out what it says.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

SecureCookieMode = Literal["auto", "always", "never"]
SECURE_COOKIE_MODES: tuple[SecureCookieMode, ...] = ("auto", "always", "never")

DEFAULT_IDLE_TIMEOUT_S = 2 * 3600
DEFAULT_MAX_AGE_S = 12 * 3600
# Activity is recorded at most this often (a database write per page view would be waste), or every quarter of
# the idle timeout if that is shorter: an active session then never looks idle, and an idle one ends at most
# this much before its configured idle timeout.
TOUCH_INTERVAL_S = 60

COOKIE_BASE_NAME = "ledgergate_session"
LOGIN_CSRF_BASE_NAME = "ledgergate_login"
# Browsers accept a __Host- cookie only with Secure, Path=/ and no Domain: no sibling subdomain or plain-HTTP
# attacker can plant one (cookie tossing, session fixation).
SECURE_PREFIX = "__Host-"


class PrincipalKind(Enum):
    MASTER = "master"  # principal_id: a slow (scrypt) fingerprint of the master key, never a fast hash
    KEY = "key"  # principal_id: the virtual key's id


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S
    max_age_s: int = DEFAULT_MAX_AGE_S

    def __post_init__(self) -> None:
        if self.idle_timeout_s <= 0 or self.max_age_s <= 0:
            raise ValueError("session timeouts must be positive")


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What the server knows about one session; the browser knows only the random id."""

    principal_kind: PrincipalKind
    principal_id: str
    csrf_token: str
    created_at_s: int
    last_seen_s: int
    expires_at_s: int  # the absolute end, fixed at log-in


def new_record(
    kind: PrincipalKind, principal_id: str, csrf_token: str, now_s: float, policy: SessionPolicy
) -> SessionRecord:
    now = int(now_s)
    return SessionRecord(kind, principal_id, csrf_token, now, now, now + policy.max_age_s)


def is_alive(record: SessionRecord, now_s: float, policy: SessionPolicy) -> bool:
    """Alive until its absolute end and while used at least once per idle timeout."""
    return now_s < record.expires_at_s and now_s < record.last_seen_s + policy.idle_timeout_s


def needs_touch(record: SessionRecord, now_s: float, policy: SessionPolicy) -> bool:
    return now_s - record.last_seen_s >= min(TOUCH_INTERVAL_S, policy.idle_timeout_s / 4)


def cookie_is_secure(mode: SecureCookieMode, scheme: str, forwarded_proto: str | None) -> bool:
    """``auto``: Secure when the browser reached us over HTTPS, directly or through a TLS-terminating proxy.

    ``X-Forwarded-Proto`` is believed from any peer: it can only add the Secure flag (and the __Host- prefix),
    never remove it, so a client forging it only makes its own cookie stricter.
    """
    if mode == "always":
        return True
    if mode == "never":
        return False
    first_hop = (forwarded_proto or "").split(",")[0].strip().lower()
    return scheme.lower() == "https" or first_hop == "https"


def cookie_name(base_name: str, secure: bool) -> str:
    return f"{SECURE_PREFIX}{base_name}" if secure else base_name
