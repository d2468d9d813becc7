"""FastAPI dependencies shared by the admin routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from ledgergate.api.auth import Principal
from ledgergate.api.errors import ApiError

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text}
    for status, text in (
        (400, "invalid input"),
        (401, "missing or invalid key"),
        (403, "not allowed"),
        (404, "not found"),
        (409, "conflict"),
    )
}


async def current_principal(request: Request) -> Principal:
    principal: Principal = await request.app.state.container.authenticator.principal(request)
    return principal


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "only a proxy admin may do this", "permission_error")
    return principal


async def reader_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.can_read_all:
        raise ApiError(403, "only a proxy admin or proxy admin viewer may read this", "permission_error")
    return principal


AnyCaller = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(admin_principal)]
Reader = Annotated[Principal, Depends(reader_principal)]
