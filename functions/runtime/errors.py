"""Errors a handler raises, each mapped to the status that gets Knative's retry right.

Knative retries 404, 408, 409, 429 and every 5xx, and dead-letters everything
else at once (reference, section (c)). So: bad data is 400 (never retried), a
conflict that will clear is 409 or 429, a broken dependency is 503.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, ClassVar


class FunctionError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        details: Sequence[Any] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title
        self.details = list(details)
        self.headers = headers or {}


class BadRequest(FunctionError):
    status = 400
    title = "Bad request"


class Unauthorized(FunctionError):
    status = 401
    title = "Unauthorized"


class Forbidden(FunctionError):
    status = 403
    title = "Forbidden"


class NotFound(FunctionError):
    status = 404
    title = "Not found"


class Conflict(FunctionError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(FunctionError):
    status = 413
    title = "Payload too large"


class TooManyRequests(FunctionError):
    status = 429
    title = "Too many requests"

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, headers={"retry-after": str(max(1, retry_after))})


class Unavailable(FunctionError):
    status = 503
    title = "Service unavailable"


def _dependency_errors() -> tuple[type[BaseException], ...]:
    """The driver errors that mean 'a dependency is down', from drivers already loaded.

    A driver that was never imported cannot have raised, so nothing is imported here.
    """
    found: list[type[BaseException]] = []
    if "redis" in sys.modules:
        from redis.exceptions import ConnectionError, TimeoutError

        found += [ConnectionError, TimeoutError]
    if "pymongo" in sys.modules:
        from pymongo.errors import AutoReconnect, ConnectionFailure, ExecutionTimeout

        found += [ConnectionFailure, AutoReconnect, ExecutionTimeout]
    return tuple(found)


def classify(exc: BaseException) -> FunctionError:
    """Turn any exception into the FunctionError that decides its status code."""
    if isinstance(exc, FunctionError):
        return exc
    if isinstance(exc, _dependency_errors()):
        return Unavailable(f"A dependency is unavailable: {type(exc).__name__}")
    return FunctionError()


def error_body(error: FunctionError, request_id: str | None) -> bytes:
    """The one error shape used everywhere: events, HTTP APIs and the broker."""
    return json.dumps(
        {"error": error.message, "details": error.details, "requestId": request_id},
        default=str,
        separators=(",", ":"),
    ).encode()


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "details", "requestId"],
    "properties": {
        "error": {"type": "string"},
        "details": {"type": "array", "items": {}},
        "requestId": {"type": ["string", "null"]},
    },
}
_ERRORS_BY_STATUS = {
    cls.status: cls.title
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        TooManyRequests,
        Unavailable,
        FunctionError,
    )
}


def openapi_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses, all in the one error shape."""
    return {
        status: {
            "description": _ERRORS_BY_STATUS[status],
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for status in statuses
    }
