"""Dashboard writes go through the admin API's own route functions, with the logged-in principal as caller.

So a write from the dashboard is validated (request schema, domain rules) and authorised exactly as the same
write over HTTP: the routes ask ``services.authorization.authorize``, and for routes that FastAPI guards with the
``Admin`` dependency (which does not run when the function is called directly) ``permitted`` asks it here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ledgergate.api.admin import customers, organizations, tags, teams, users
from ledgergate.api.admin import keys as key_routes
from ledgergate.api.admin.entity_schemas import (
    TagIn,
    TeamNewIn,
    TeamUpdateIn,
    UserNewIn,
    UserUpdateIn,
)
from ledgergate.api.admin.schemas import KeyGenerateIn, KeyRefIn, KeyUpdateIn, ResetSpendIn
from ledgergate.api.auth import Principal
from ledgergate.api.errors import ApiError
from ledgergate.dashboard.viewer import Viewer
from ledgergate.domain.charging import EntityType
from ledgergate.domain.errors import EntityConflict, InvalidInput
from ledgergate.services.authorization import Action, Everything, authorize
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
    """Run an API route function; turn every refusal into ``Refused`` with the API's status and message."""
    try:
        return await action
    except ApiError as exc:
        raise Refused(exc.status, exc.message, exc.param) from exc
    except ServiceError as exc:
        raise Refused(exc.status_code, exc.message, exc.param) from exc
    except InvalidInput as exc:
        raise Refused(400, f"{exc.field}: {exc.message}", exc.field) from exc
    except EntityConflict as exc:
        raise Refused(409, str(exc)) from exc


def permitted(viewer: Viewer, action: Action = Action.ADMIN_WRITE) -> Principal:
    """The same decision as the API's ``Admin`` dependency: ``authorize``, for a route called directly."""
    denied = authorize(viewer.principal, action, Everything())
    if denied is not None:
        raise Refused(403, denied.reason, denied.param)
    return viewer.principal


async def create(slug: str, request: Request, viewer: Viewer, body: dict[str, Any]) -> dict[str, Any]:
    """Create a key, team, user or tag; returns the API's response (a new key's secret included)."""
    caller = viewer.principal
    if slug == "keys":
        return await call_api(key_routes.generate_key(validated(KeyGenerateIn, body), request, caller))
    if slug == "teams":
        return await call_api(teams.new_team(validated(TeamNewIn, body), request, permitted(viewer)))
    if slug == "users":
        return await call_api(users.new_user(validated(UserNewIn, body), request, caller))
    if slug == "tags":
        return await call_api(tags.new_tag(validated(TagIn, body), request, permitted(viewer)))
    raise Refused(404, f"{slug} cannot be created here")


async def update(slug: str, entity_id: str, request: Request, viewer: Viewer, body: dict[str, Any]) -> dict[str, Any]:
    caller = viewer.principal
    if slug == "keys":
        model = validated(KeyUpdateIn, {**body, "key": entity_id})
        return await call_api(key_routes.update_key(model, request, caller))
    if slug == "teams":
        team = validated(TeamUpdateIn, {**body, "team_id": entity_id})
        return await call_api(teams.update_team(team, request, permitted(viewer)))
    if slug == "users":
        user = validated(UserUpdateIn, {**body, "user_id": entity_id})
        return await call_api(users.update_user(user, request, caller))
    if slug == "tags":
        return await call_api(
            tags.update_tag(validated(TagIn, {**body, "name": entity_id}), request, permitted(viewer))
        )
    raise Refused(404, f"{slug} cannot be edited here")


ResetRoute = Callable[[str, ResetSpendIn, Request, Principal], Awaitable[dict[str, Any]]]
_ADMIN_ONLY_RESETS: dict[EntityType, ResetRoute] = {
    EntityType.USER: users.reset_user_spend,
    EntityType.ORGANIZATION: organizations.reset_organization_spend,
    EntityType.CUSTOMER: customers.reset_customer_spend,
    EntityType.TAG: tags.reset_tag_spend,
}


async def reset(
    entity_type: EntityType, entity_id: str, request: Request, viewer: Viewer, fields: dict[str, Any]
) -> dict[str, Any]:
    """``POST /<entity>/{id}/reset_spend`` for one window; the adjustment record names the viewer as actor."""
    body = validated(ResetSpendIn, fields)
    caller = viewer.principal
    if entity_type is EntityType.KEY:
        return await call_api(key_routes.reset_key_spend(entity_id, body, request, caller))
    if entity_type is EntityType.TEAM:
        return await call_api(teams.reset_team_spend(entity_id, body, request, caller))
    route = _ADMIN_ONLY_RESETS.get(entity_type)
    if route is None:
        raise Refused(404, f"a {entity_type.value} has no spend to reset here")
    return await call_api(route(entity_id, body, request, permitted(viewer)))


async def set_key_blocked(key_id: str, request: Request, viewer: Viewer, blocked: bool) -> dict[str, Any]:
    route = key_routes.block_key if blocked else key_routes.unblock_key
    return await call_api(route(KeyRefIn(key=key_id), request, viewer.principal))
