"""The small framework every kshop function stands on.

A function file declares a `Function`, its handlers and its events; the
runtime carries everything else: CloudEvents in and out, idempotency, health,
settings, clients, auth, metrics, traces and logs.
"""

from functions.runtime.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    FunctionError,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from functions.runtime.events import Event, EventData
from functions.runtime.function import Function

__all__ = [
    "BadRequest",
    "Conflict",
    "Event",
    "EventData",
    "Forbidden",
    "Function",
    "FunctionError",
    "NotFound",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
]
