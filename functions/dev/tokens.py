"""The signing key of local development, kept here and nowhere else.

`kshop dev` gives it to every function and `kshop token` signs with it, so a
minted token works against the local functions. JWT_SECRET wins over it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from functions.runtime import bearer
from functions.runtime.settings import Settings

DEV_JWT_SECRET = "kshop-local-development-only-not-a-secret"


def jwt_secret() -> str:
    return os.environ.get("JWT_SECRET") or DEV_JWT_SECRET


def mint(sub: str, permissions: Iterable[str], ttl: int = 3600) -> str:
    """A token the functions started by `kshop dev` accept."""
    return bearer.mint(sub, permissions, ttl, config=Settings(jwt_secret=jwt_secret()))
