"""Bearer JWTs with permissions, as a FastAPI dependency: `Depends(require("user:read"))`.

The checks themselves are bearer.py's; this makes them FastAPI dependencies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from functions.runtime.bearer import Claims, challenge, verify
from functions.runtime.errors import Forbidden, Unauthorized, openapi_responses

__all__ = ["AUTH_RESPONSES", "Claims", "authenticate", "require"]

AUTH_RESPONSES = openapi_responses(401, 403)

# auto_error=False: a missing token must get kshop's 401 shape, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="A JWT; mint one with `kshop token`.")


def authenticate(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Claims:
    """A dependency for routes that need a valid token but decide access themselves."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Missing bearer token", headers=challenge())
    return verify(credentials.credentials)


def require(*permissions: str) -> Callable[..., Awaitable[Claims]]:
    """A dependency that needs every listed permission and hands the claims over."""

    async def dependency(claims: Claims = Depends(authenticate)) -> Claims:
        missing = [p for p in permissions if not claims.can(p)]
        if missing:
            raise Forbidden("Missing permission", missing)
        return claims

    return dependency
