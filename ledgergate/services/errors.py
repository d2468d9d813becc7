"""Outcomes of admin use cases that are not success; the API maps each to one HTTP status.

ServiceError
 ├── Unauthenticated 401
 ├── NotFound        404
 ├── Forbidden       403
 ├── Conflict        409
 └── (InvalidInput from the domain) 400
"""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class Unauthenticated(ServiceError):
    """No key, an unknown key, or a blocked or expired one."""

    status_code = 401
    error_type = "authentication_error"


class NotFound(ServiceError):
    status_code = 404
    error_type = "not_found_error"


class Forbidden(ServiceError):
    status_code = 403
    error_type = "permission_error"


class Conflict(ServiceError):
    status_code = 409
    error_type = "conflict_error"

