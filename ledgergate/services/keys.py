"""Virtual keys: issue (secret shown once, stored as its sha256), update, block, delete, look up."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ledgergate.domain.charging import EntityType
from ledgergate.domain.durations import DurationError, add_duration, parse_duration
from ledgergate.domain.entities import Entity
from ledgergate.domain.errors import EntityConflict, InvalidInput
from ledgergate.domain.key_ceilings import ISSUED_BY, ceiling_record
from ledgergate.domain.ports import Clock
from ledgergate.domain.principals import KeyCeiling
from ledgergate.services.authorization import BLOCKED_BY_PROXY_ADMIN
from ledgergate.services.budget_fields import apply_budget_fields
from ledgergate.services.directory import Directory
from ledgergate.services.errors import Conflict, NotFound
from ledgergate.services.key_limits import record_limits
from ledgergate.services.views import EntityViews

SECRET_PREFIX = "sk-"
_PLAIN_FIELDS = ("key_alias", "user_id", "team_id", "organization_id", "budget_id")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_id_of(key: str) -> str:
    """Admins may name a key by its secret or by its hash (``token``)."""
    return hash_secret(key) if key.startswith(SECRET_PREFIX) else key


def abbreviate(secret: str) -> str:
    return f"{secret[:5]}...{secret[-4:]}"


def _block_record(entity: Entity, blocked: bool, blocker: str) -> dict[str, Any]:
    """Who holds the block: a proxy admin's block stays a proxy admin's when a team admin blocks again."""
    extra = {k: v for k, v in entity.extra.items() if k != "blocked_by"}
    if not blocked:
        return extra
    held = entity.extra.get("blocked_by", BLOCKED_BY_PROXY_ADMIN) if entity.blocked else None
    return {**extra, "blocked_by": BLOCKED_BY_PROXY_ADMIN if BLOCKED_BY_PROXY_ADMIN in (held, blocker) else blocker}


def _issuer_record(extra: Mapping[str, Any], ceiling: KeyCeiling | None) -> dict[str, Any]:
    """``extra`` with the issuer's ceiling (domain/key_ceilings.py); none when a proxy admin issues or rebinds."""
    kept = {k: v for k, v in extra.items() if k != ISSUED_BY}
    return kept if ceiling is None else {**kept, ISSUED_BY: ceiling_record(ceiling)}


def _str_tuple(value: object, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(field, "must be a list of strings")
    return tuple(value)


class KeyService:
    def __init__(self, directory: Directory, views: EntityViews, clock: Clock) -> None:
        self._directory = directory
        self._views = views
        self._clock = clock

    async def get(self, key: str) -> Entity:
        entity = await self._directory.get(EntityType.KEY, key_id_of(key))
        if entity is None:
            raise NotFound("key not found", param="key")
        return entity

    def _apply(
        self,
        entity: Entity,
        fields: Mapping[str, Any],
        blocker: str = BLOCKED_BY_PROXY_ADMIN,
        ceiling: KeyCeiling | None = None,
        creating: bool = False,
    ) -> Entity:
        """``blocker`` says who writes (a proxy admin or a team admin); ``ceiling``, what the issuer may grant,
        recorded when the key is created or rebound (``user_id`` / ``team_id``)."""
        changes: dict[str, Any] = {}
        for name in _PLAIN_FIELDS:
            if name in fields:
                value = fields[name]
                if value is not None and not isinstance(value, str):
                    raise InvalidInput(name, "must be a string")
                changes["alias" if name == "key_alias" else name] = value
        if "models" in fields:
            changes["models"] = _str_tuple(fields["models"], "models")
        if "tags" in fields:
            changes["tags"] = _str_tuple(fields["tags"], "tags")
        if "metadata" in fields:
            metadata = fields["metadata"] or {}
            if not isinstance(metadata, dict):
                raise InvalidInput("metadata", "must be an object")
            changes["metadata"] = metadata
        if "blocked" in fields:
            changes["blocked"] = bool(fields["blocked"])
            changes["extra"] = _block_record(entity, changes["blocked"], blocker)
        if "duration" in fields:
            changes["expires_at_s"] = self._expiry(fields["duration"])
        extra = record_limits(changes.get("extra", entity.extra), fields, blocker == BLOCKED_BY_PROXY_ADMIN)
        if creating or "user_id" in fields or "team_id" in fields:
            extra = _issuer_record(extra, ceiling)
        changes["extra"] = extra
        return apply_budget_fields(entity.updated(**changes), fields)

    def _expiry(self, duration: object) -> float | None:
        if duration is None:
            return None
        try:
            parsed = parse_duration(duration)
        except DurationError as exc:
            raise InvalidInput("duration", str(exc)) from exc
        now = datetime.fromtimestamp(self._clock.now_s(), UTC)
        return add_duration(now, parsed).timestamp()

    async def _check_references(self, entity: Entity) -> None:
        if entity.team_id and await self._directory.get(EntityType.TEAM, entity.team_id) is None:
            raise NotFound(f"team {entity.team_id!r} not found", param="team_id")
        if (
            entity.organization_id
            and await self._directory.get(EntityType.ORGANIZATION, entity.organization_id) is None
        ):
            raise NotFound(f"organization {entity.organization_id!r} not found", param="organization_id")
        if entity.budget_id and await self._directory.get(EntityType.BUDGET, entity.budget_id) is None:
            raise NotFound(f"budget {entity.budget_id!r} not found", param="budget_id")

    def _secret(self, fields: Mapping[str, Any]) -> str:
        secret = fields.get("key") or SECRET_PREFIX + secrets.token_urlsafe(24)
        if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX) or len(secret) < 8:
            raise InvalidInput("key", f"a custom key must be a string starting with {SECRET_PREFIX!r}")
        return secret

    def preview_new(
        self, fields: Mapping[str, Any], blocker: str = BLOCKED_BY_PROXY_ADMIN, ceiling: KeyCeiling | None = None
    ) -> Entity:
        """The key ``generate`` would store (without its secret's id), for authorization to judge first."""
        now_s = self._clock.now_s()
        entity = Entity(EntityType.KEY, "", created_at_s=now_s, updated_at_s=now_s)
        return self._apply(entity, fields, blocker, ceiling, creating=True)

    def preview_update(
        self, current: Entity, fields: Mapping[str, Any], blocker: str = BLOCKED_BY_PROXY_ADMIN
    ) -> Entity:
        """The key ``update`` would store, for authorization to judge first."""
        return self._apply(current, fields, blocker)

    async def generate(
        self, fields: Mapping[str, Any], blocker: str = BLOCKED_BY_PROXY_ADMIN, ceiling: KeyCeiling | None = None
    ) -> dict[str, Any]:
        secret = self._secret(fields)
        now_s = self._clock.now_s()
        entity = self._apply(
            Entity(EntityType.KEY, hash_secret(secret), created_at_s=now_s, updated_at_s=now_s),
            fields,
            blocker,
            ceiling,
            creating=True,
        )
        entity = entity.updated(extra={**entity.extra, "key_name": abbreviate(secret)})
        await self._check_references(entity)
        try:
            await self._directory.create(entity)
        except EntityConflict as exc:
            raise Conflict("a key with this secret exists already", param="key") from exc
        view = await self.view(entity)
        view["key"] = secret  # the only time the secret is ever shown
        return view

    async def update(
        self,
        key: str,
        fields: Mapping[str, Any],
        blocker: str = BLOCKED_BY_PROXY_ADMIN,
        expected: Entity | None = None,
        ceiling: KeyCeiling | None = None,
    ) -> dict[str, Any]:
        """``expected``: the key as authorised; a concurrent change in between is a 409, not a silent overwrite."""
        current = await self.get(key)
        if expected is not None and current.version != expected.version:
            raise Conflict("the key changed concurrently; retry", param="key")
        entity = self._apply(current, fields, blocker, ceiling)
        entity = entity.updated(updated_at_s=self._clock.now_s(), version=current.version + 1)
        await self._check_references(entity)
        try:
            await self._directory.save(entity)
        except EntityConflict as exc:
            raise Conflict(str(exc)) from exc
        return await self.view(entity)

    async def set_blocked(
        self, key: str, blocked: bool, blocker: str = BLOCKED_BY_PROXY_ADMIN, expected: Entity | None = None
    ) -> dict[str, Any]:
        return await self.update(key, {"blocked": blocked}, blocker, expected)

    async def delete(self, keys: list[str]) -> list[str]:
        deleted = []
        for key in keys:
            entity = await self.get(key)
            await self._directory.delete(EntityType.KEY, entity.id)
            deleted.append(key)
        return deleted

    async def view(self, entity: Entity) -> dict[str, Any]:
        view = await self._views.view(entity)
        view["key_alias"] = view.pop("alias")
        view["token"] = entity.id
        return view
