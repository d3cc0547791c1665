"""One MongoDB client, one Redis pool and one HTTP pool per process.

Each is created on first use, so a function pays only for the drivers it
touches, and all are closed when the function shuts down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.runtime.settings import settings

if TYPE_CHECKING:
    import httpx
    from pymongo.asynchronous.database import AsyncDatabase
    from pymongo.asynchronous.mongo_client import AsyncMongoClient
    from redis.asyncio import Redis

_redis: Redis | None = None
_mongo: AsyncMongoClient[dict[str, Any]] | None = None
_http: httpx.AsyncClient | None = None


def redis() -> Redis:
    global _redis
    if _redis is None:
        from redis.asyncio import BlockingConnectionPool, Redis

        # Blocking: a burst beyond the pool waits for a connection instead of failing.
        pool = BlockingConnectionPool.from_url(
            settings().redis_url,
            max_connections=settings().redis_max_connections,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
        _redis = Redis(connection_pool=pool)
    return _redis


def key(*parts: str) -> str:
    """A Redis key under this deployment's prefix, so tenants and tests never collide."""
    return ":".join((settings().redis_prefix, *parts))


def mongo() -> AsyncDatabase[dict[str, Any]]:
    global _mongo
    if _mongo is None:
        from pymongo import AsyncMongoClient

        _mongo = AsyncMongoClient(
            settings().mongodb_url,
            maxPoolSize=settings().mongodb_max_pool_size,
            serverSelectionTimeoutMS=3000,
            connectTimeoutMS=2000,
            tz_aware=True,
        )
    return _mongo[settings().mongodb_database]


def http() -> httpx.AsyncClient:
    global _http
    if _http is None:
        import httpx

        _http = httpx.AsyncClient(
            timeout=settings().publish_timeout,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
    return _http


def in_use() -> list[str]:
    return [name for name, client in (("mongo", _mongo), ("redis", _redis)) if client is not None]


async def close() -> None:
    global _redis, _mongo, _http
    if _redis is not None:
        await _redis.aclose()
    if _mongo is not None:
        await _mongo.close()
    if _http is not None:
        await _http.aclose()
    _redis = _mongo = _http = None
    settings.cache_clear()
