"""Dashboard sessions: opaque random ids in the cookie, the principal and the CSRF token on the server.

Logging out deletes the row, so the old cookie is refused at once by every instance sharing the database.
The rules (idle and absolute expiry, when to record activity) are in ``domain/dashboard_sessions.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

from ledgergate.domain.dashboard_sessions import (
    PrincipalKind,
    SessionPolicy,
    SessionRecord,
    is_alive,
    needs_touch,
    new_record,
)
from ledgergate.domain.ports import Clock

# A session id is 32 random bytes (43 URL-safe characters); anything else in a cookie is refused unread.
SESSION_ID_BYTES = 32
_MAX_SESSION_ID_CHARS = 64
# scrypt of the master key, computed once per process: what a master-key session is bound to, so that changing
# the master key ends those sessions. Deliberately slow (about 0.1 s, 16 MiB) so that a copy of the sessions
# table is no shortcut to guessing a weak master key, unlike the sha256 the cookie used to carry.
_MASTER_SALT = b"ledgergate-dashboard-master-session-v1"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class SessionStore(Protocol):
    async def create(self, id_hash: str, record: SessionRecord) -> None: ...

    async def get(self, id_hash: str) -> SessionRecord | None: ...

    async def touch(self, id_hash: str, now_s: int) -> None: ...

    async def revoke(self, id_hash: str) -> None: ...

    async def revoke_principal(self, kind: PrincipalKind, principal_id: str) -> int: ...


@dataclass(frozen=True, slots=True)
class IssuedSession:
    session_id: str  # goes into the cookie, and nowhere else
    record: SessionRecord


def same_text(a: str, b: str) -> bool:
    """Constant-time equality that also accepts non-ASCII text (cookies and form fields may carry anything)."""
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def master_fingerprint(master_key: str) -> str:
    digest = hashlib.scrypt(master_key.encode(), salt=_MASTER_SALT, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return digest.hex()


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


def _well_formed(session_id: str) -> bool:
    return 0 < len(session_id) <= _MAX_SESSION_ID_CHARS and session_id.isascii()


class DashboardSessions:
    def __init__(self, store: SessionStore, clock: Clock, policy: SessionPolicy, master_key: str | None) -> None:
        self._store = store
        self._clock = clock
        self.policy = policy
        self._master_key = master_key
        self._master_fingerprint: str | None = None

    async def current_master_fingerprint(self) -> str | None:
        if self._master_key is None:
            return None
        if self._master_fingerprint is None:
            # ~0.1 s of CPU once per process: in a thread, so LLM requests on the event loop do not wait for it.
            self._master_fingerprint = await asyncio.to_thread(master_fingerprint, self._master_key)
        return self._master_fingerprint

    async def issue(self, kind: PrincipalKind, principal_id: str) -> IssuedSession:
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        record = new_record(kind, principal_id, secrets.token_urlsafe(32), self._clock.now_s(), self.policy)
        await self._store.create(_id_hash(session_id), record)
        return IssuedSession(session_id, record)

    async def issue_for_master(self) -> IssuedSession:
        fingerprint = await self.current_master_fingerprint()
        if fingerprint is None:
            raise ValueError("no master key is configured")
        return await self.issue(PrincipalKind.MASTER, fingerprint)

    async def resolve(self, session_id: str | None) -> SessionRecord | None:
        """The live session ``session_id`` names, recording activity; ``None`` for anything else (an expired
        session is deleted on sight)."""
        if not session_id or not _well_formed(session_id):
            return None
        id_hash = _id_hash(session_id)
        record = await self._store.get(id_hash)
        if record is None:
            return None
        now_s = self._clock.now_s()
        if not is_alive(record, now_s, self.policy):
            await self._store.revoke(id_hash)
            return None
        if record.principal_kind is PrincipalKind.MASTER:
            fingerprint = await self.current_master_fingerprint()
            if fingerprint is None or not same_text(record.principal_id, fingerprint):
                await self._store.revoke(id_hash)  # the master key changed (or was removed) since the log-in
                return None
        if needs_touch(record, now_s, self.policy):
            await self._store.touch(id_hash, int(now_s))
        return record

    async def revoke(self, session_id: str | None) -> None:
        if session_id and _well_formed(session_id):
            await self._store.revoke(_id_hash(session_id))

    async def revoke_key(self, key_id: str) -> int:
        """End every session of a virtual key (blocked, deleted or rotated)."""
        return await self._store.revoke_principal(PrincipalKind.KEY, key_id)
