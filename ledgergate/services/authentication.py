"""Who is calling: the master key (proxy admin) or a virtual key, with its role.

A service, not an HTTP concern: the admin API, the LLM routes, the metrics endpoint and the dashboard's log-in all
ask it, and the composition root builds it without importing any HTTP layer."""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.key_ceilings import principal_of_key
from ledgergate.domain.ports import Clock
from ledgergate.domain.principals import Principal, Role
from ledgergate.services.directory import Directory
from ledgergate.services.errors import Unauthenticated

__all__ = ["Authenticator", "HasHeaders", "HeaderLookup", "Principal", "Role", "bearer_secret"]


class HeaderLookup(Protocol):
    def get(self, key: str, /) -> str | None: ...


class HasHeaders(Protocol):
    """An HTTP request as far as authentication cares (Starlette's ``Request`` is one)."""

    @property
    def headers(self) -> HeaderLookup: ...


def bearer_secret(headers: HeaderLookup) -> str | None:
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return header.strip() or None
    return headers.get("x-api-key") or headers.get("api-key")


class Authenticator:
    def __init__(self, directory: Directory, clock: Clock, master_key: str | None) -> None:
        self._directory = directory
        self._clock = clock
        self._master_key = master_key
        self._master_entity = (
            Entity(EntityType.KEY, hashlib.sha256(master_key.encode()).hexdigest(), alias="master_key")
            if master_key
            else None
        )

    async def principal(self, request: HasHeaders) -> Principal:
        return await self.principal_from_headers(request.headers)

    async def principal_from_headers(self, headers: HeaderLookup) -> Principal:
        secret = bearer_secret(headers)
        if secret is None:
            raise Unauthenticated("missing API key: send 'Authorization: Bearer sk-...'")
        if self._master_key and self._master_entity and hmac.compare_digest(secret.encode(), self._master_key.encode()):
            return Principal(Role.PROXY_ADMIN, self._master_entity, is_master=True)
        key = await self._directory.get(EntityType.KEY, hashlib.sha256(secret.encode()).hexdigest())
        if key is None:
            raise Unauthenticated("invalid API key")
        if key.blocked:
            raise Unauthenticated(f"key {key.display_name()!r} is blocked")
        if key.is_expired(self._clock.now_s()):
            raise Unauthenticated(f"key {key.display_name()!r} has expired")
        return await self.principal_for_key(key)

    async def principal_for_key(self, key: Entity) -> Principal:
        """The principal a (valid) key acts as: its user's role (``internal_user`` by default), capped by the
        ceiling recorded when a non-proxy-admin issued it (domain/key_ceilings.py)."""
        user = await self._directory.get(EntityType.USER, key.user_id) if key.user_id else None
        return principal_of_key(key, user)
