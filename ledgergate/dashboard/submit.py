"""Dashboard writes call the same admin use cases as the admin API (``services/admin_commands.py``), with the
logged-in principal as caller.

So a write from the dashboard is validated (the API's request schemas, domain rules) and authorised
(``services.authorization.authorize``) exactly as the same write over HTTP; a refusal becomes ``Refused`` with the
API's status and message, shown on the form.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ledgergate.container import Container
from ledgergate.dashboard.viewer import Viewer
from ledgergate.domain.charging import EntityType
from ledgergate.domain.errors import EntityConflict, InvalidInput
from ledgergate.services.admin_commands import AdminCommands
from ledgergate.services.admin_entity_schemas import TagIn, TeamNewIn, TeamUpdateIn, UserNewIn, UserUpdateIn
from ledgergate.services.admin_schemas import KeyGenerateIn, KeyUpdateIn, ResetSpendIn
from ledgergate.services.body_fields import UNKNOWN_FIELD
from ledgergate.services.errors import ServiceError

Model = TypeVar("Model", bound=BaseModel)


class Refused(Exception):
    """The API refused the write: its status and message, shown on the form."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("float", "int", "str", "bool") or "[" in str(part):
            continue  # pydantic's union-branch tags are not fields
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def validated(model: type[Model], body: dict[str, Any]) -> Model:
    """The request schema of the API route, applied to the form's body (400 with the field on failure)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors()
        details = "; ".join(
            str(e["msg"]) if e["type"] == UNKNOWN_FIELD else f"{_location(tuple(e['loc']))}: {e['msg']}"
            for e in errors[:5]
        )
        raise Refused(400, details, _location(tuple(errors[0]["loc"])) if errors else None) from exc


async def call_api(action: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """Run an admin use case; turn every refusal into ``Refused`` with the API's status and message."""
    try:
        return await action
    except ServiceError as exc:
        raise Refused(exc.status_code, exc.message, exc.param) from exc
    except InvalidInput as exc:
        raise Refused(400, f"{exc.field}: {exc.message}", exc.field) from exc
    except EntityConflict as exc:
        raise Refused(409, str(exc)) from exc


def _commands(request: Request) -> AdminCommands:
    container: Container = request.app.state.container
    return container.admin_commands


async def create(slug: str, request: Request, viewer: Viewer, body: dict[str, Any]) -> dict[str, Any]:
    """Create a key, team, user or tag; returns the API's response (a new key's secret included)."""
    commands, caller = _commands(request), viewer.principal
    if slug == "keys":
        return await call_api(commands.generate_key(caller, validated(KeyGenerateIn, body)))
    if slug == "teams":
        return await call_api(commands.create_team(caller, validated(TeamNewIn, body)))
    if slug == "users":
        return await call_api(commands.create_user(caller, validated(UserNewIn, body)))
    if slug == "tags":
        return await call_api(commands.create_tag(caller, validated(TagIn, body)))
    raise Refused(404, f"{slug} cannot be created here")


async def update(slug: str, entity_id: str, request: Request, viewer: Viewer, body: dict[str, Any]) -> dict[str, Any]:
    commands, caller = _commands(request), viewer.principal
    if slug == "keys":
        return await call_api(commands.update_key(caller, validated(KeyUpdateIn, {**body, "key": entity_id})))
    if slug == "teams":
        team = validated(TeamUpdateIn, {**body, "team_id": entity_id})
        return await call_api(commands.update_team(caller, team))
    if slug == "users":
        user = validated(UserUpdateIn, {**body, "user_id": entity_id})
        return await call_api(commands.update_user(caller, user))
    if slug == "tags":
        return await call_api(commands.update_tag(caller, validated(TagIn, {**body, "name": entity_id})))
    raise Refused(404, f"{slug} cannot be edited here")


async def reset(
    entity_type: EntityType, entity_id: str, request: Request, viewer: Viewer, fields: dict[str, Any]
) -> dict[str, Any]:
    """``POST /<entity>/{id}/reset_spend`` for one window; the adjustment record names the viewer as actor."""
    body = validated(ResetSpendIn, fields)
    return await call_api(_commands(request).reset_spend(viewer.principal, entity_type, entity_id, body))


async def set_key_blocked(key_id: str, request: Request, viewer: Viewer, blocked: bool) -> dict[str, Any]:
    return await call_api(_commands(request).set_key_blocked(viewer.principal, key_id, blocked))
