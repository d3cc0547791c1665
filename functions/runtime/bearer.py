"""Bearer JWTs with permissions: checking one, and minting one with the dev key.

Only the configured algorithms are accepted, and each family takes its own key:
an HS* token is checked with the shared secret, an RS*/ES* token with the public
key or the JWKS. A token can therefore never pick its own verification key
(the HS256-with-public-key confusion), nor skip verification (`alg: none`).

No FastAPI here: auth.py makes these checks route dependencies, and `kshop token`
mints without loading FastAPI.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jwt

from functions.runtime.errors import Unauthorized
from functions.runtime.settings import Settings, settings


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    permissions: frozenset[str]
    raw: dict[str, Any] = field(repr=False)

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def challenge(error: str | None = None, description: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="kshop"'
    if error:
        value += f', error="{error}", error_description="{description}"'
    return {"www-authenticate": value}


@cache
def _jwks(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300)


def _key(algorithm: str, token: str, config: Settings) -> Any:
    if algorithm.startswith("HS"):
        if config.jwt_secret:
            return config.jwt_secret
    elif config.jwt_public_key:
        return config.jwt_public_key
    elif config.jwt_jwks_url:
        return _jwks(config.jwt_jwks_url).get_signing_key_from_jwt(token).key
    raise jwt.InvalidTokenError(f"no key is configured for {algorithm}")


def verify(token: str, config: Settings | None = None) -> Claims:
    """Check a token; Unauthorized (401) for anything but a valid, unexpired one."""
    config = config or settings()
    try:
        algorithm = jwt.get_unverified_header(token).get("alg", "")
        if algorithm not in config.jwt_algorithms:
            raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not allowed")
        claims: dict[str, Any] = jwt.decode(
            token,
            _key(algorithm, token, config),
            algorithms=[algorithm],
            issuer=config.jwt_issuer,
            audience=config.jwt_audience,
            leeway=config.jwt_leeway,
            options={
                "require": ["exp", "sub"],
                "verify_iss": config.jwt_issuer is not None,
                "verify_aud": config.jwt_audience is not None,
            },
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("Token expired", headers=challenge("invalid_token", "expired")) from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(
            "Invalid token", [str(exc)], headers=challenge("invalid_token", "invalid")
        ) from None
    permissions = claims.get("permissions", [])
    if isinstance(permissions, str):  # space-separated, as OAuth writes `scope`
        permissions = permissions.split()
    # Anything else is refused, not read loosely: {"user:list": false} must not grant it.
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise Unauthorized(
            "Invalid token",
            ["permissions must be a list of strings"],
            headers=challenge("invalid_token", "invalid"),
        )
    return Claims(str(claims["sub"]), frozenset(permissions), claims)


def mint(
    sub: str, permissions: Iterable[str], ttl: int = 3600, config: Settings | None = None
) -> str:
    """A token signed with the configured dev key, for curl users and tests."""
    config = config or settings()
    algorithm = config.jwt_algorithms[0]
    symmetric = algorithm.startswith("HS")
    key = config.jwt_secret if symmetric else config.jwt_private_key
    if not key:
        variable = "JWT_SECRET" if symmetric else "JWT_PRIVATE_KEY"
        raise ValueError(f"set {variable} to mint {algorithm} tokens")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "permissions": sorted(permissions),
        "iat": now,
        "exp": now + ttl,
    }
    if config.jwt_issuer:
        claims["iss"] = config.jwt_issuer
    if config.jwt_audience:
        claims["aud"] = config.jwt_audience
    return jwt.encode(claims, key, algorithm=algorithm)
