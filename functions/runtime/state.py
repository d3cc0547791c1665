"""Typed JSON values in Redis, each with a TTL: the seed's state manager, made small.

    cache = State(CachedUser, "users", "cache", ttl=300)
    await cache.set(user_id, CachedUser(...))
    await cache.update(user_id, lambda current: newer(current, candidate))

Values go through a pydantic TypeAdapter both ways, so a value read back has the
type it was written with. Keys live under the deployment's prefix
(`clients.key`), so tenants and tests never collide.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Generic, TypeVar

from pydantic import TypeAdapter
from redis.exceptions import WatchError

from functions.runtime import clients
from functions.runtime.errors import Conflict

T = TypeVar("T")


class State(Generic[T]):
    def __init__(self, kind: type[T], *namespace: str, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive: state without expiry belongs in MongoDB")
        self.namespace = namespace
        self.ttl = ttl
        self._adapter = TypeAdapter(kind)

    def key(self, name: str) -> str:
        """The Redis key of one value; the prefix is read per call, as settings may change."""
        return clients.key(*self.namespace, name)

    def _encode(self, value: T) -> bytes:
        return self._adapter.dump_json(value, by_alias=True)

    def _decode(self, raw: bytes | str | None) -> T | None:
        return None if raw is None else self._adapter.validate_json(raw)

    def _ttl_ms(self, ttl: float | None) -> int:
        return max(1, round((ttl or self.ttl) * 1000))

    async def get(self, name: str) -> T | None:
        return self._decode(await clients.redis().get(self.key(name)))

    async def set(self, name: str, value: T, *, ttl: float | None = None) -> None:
        await clients.redis().set(self.key(name), self._encode(value), px=self._ttl_ms(ttl))

    async def add(self, name: str, value: T, *, ttl: float | None = None) -> bool:
        """Set the value only if there is none; True when this call set it."""
        added = await clients.redis().set(
            self.key(name), self._encode(value), px=self._ttl_ms(ttl), nx=True
        )
        return bool(added)

    async def delete(self, name: str) -> bool:
        """Remove the value; True when there was one."""
        return bool(await clients.redis().delete(self.key(name)))

    async def update(
        self,
        name: str,
        change: Callable[[T | None], T | None],
        *,
        ttl: float | None = None,
        attempts: int = 10,
    ) -> T | None:
        """Optimistic check-and-set: apply `change` to the current value, atomically.

        `change` gets the current value (None when absent) and returns the new one,
        None to delete it, or the very object it got to leave it alone. Should another
        writer change the key in between, Redis refuses the write (WATCH/MULTI) and
        `change` runs again on the fresh value; Conflict (409) after `attempts` losses.
        """
        key = self.key(name)
        async with clients.redis().pipeline(transaction=True) as pipe:
            for attempt in range(attempts):
                try:
                    await pipe.watch(key)
                    current = self._decode(await pipe.get(key))
                    new = change(current)
                    if new is current:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return current
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if new is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, self._encode(new), px=self._ttl_ms(ttl))
                    await pipe.execute()
                    return new
                except WatchError:
                    # Jittered, growing pauses spread out writers that keep colliding.
                    await asyncio.sleep(random.uniform(0, 0.002 * 2**attempt))
        raise Conflict(f"{key} kept changing under {attempts} attempts to update it")
