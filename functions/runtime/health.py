"""Liveness and readiness. Ready means every dependency the function uses answers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

from functions.runtime import clients
from functions.runtime.settings import settings

if TYPE_CHECKING:
    from functions.runtime.function import Function


async def _ping(dependency: str) -> None:
    if dependency == "redis":
        await clients.redis().ping()
    else:
        await clients.mongo().command("ping")


class Health:
    def __init__(self, function: Function) -> None:
        self.function = function
        self._checked_at = float("-inf")
        self._last: tuple[int, bytes] = (503, b"{}")

    async def ready(self, *, draining: bool) -> tuple[int, bytes]:
        if draining:
            return 503, b'{"status":"draining"}'
        # Probes come every few seconds from every kubelet and activator;
        # a short cache keeps them from becoming load on Mongo and Redis.
        if time.monotonic() - self._checked_at > settings().readiness_cache:
            self._last = await self._check()
            self._checked_at = time.monotonic()
        return self._last

    async def _check(self) -> tuple[int, bytes]:
        dependencies = sorted(self.function.uses)
        results = await asyncio.gather(
            *(asyncio.wait_for(_ping(d), timeout=2) for d in dependencies),
            return_exceptions=True,
        )
        failed = {
            d: f"{type(r).__name__}: {r}"
            for d, r in zip(dependencies, results, strict=True)
            if isinstance(r, BaseException)
        }
        body = {"status": "unready" if failed else "ready", "failed": failed}
        return (503 if failed else 200), json.dumps(body).encode()
