"""FastAPI dependencies shared by the admin routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict

from ledgergate.api.errors import ApiError
from ledgergate.domain.principals import Principal
from ledgergate.services.authorization import Action, Everything, authorize


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    message: str
    type: str
    param: str | None
    code: str


class ErrorBody(BaseModel):
    """The body of every error response (api/errors.py)."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "model": ErrorBody}
    for status, text in (
        (400, "invalid input"),
        (401, "missing or invalid key"),
        (403, "not allowed"),
        (404, "not found"),
        (409, "conflict"),
        (503, "the database or the counter store is unavailable; retry"),
    )
}


async def current_principal(request: Request) -> Principal:
    principal: Principal = await request.app.state.container.authenticator.principal(request)
    return principal


def _permitted(principal: Principal, action: Action) -> Principal:
    denied = authorize(principal, action, Everything())
    if denied is not None:
        raise ApiError(403, denied.reason, "permission_error", denied.param)
    return principal


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    return _permitted(principal, Action.ADMIN_WRITE)


async def reader_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    return _permitted(principal, Action.READ_ANY)


AnyCaller = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(admin_principal)]
Reader = Annotated[Principal, Depends(reader_principal)]
