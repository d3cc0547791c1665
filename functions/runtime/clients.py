"""One MongoDB client, one Redis pool and one HTTP pool per process.

Each is created on first use, so a function pays only for the drivers it
touches, and all are closed when the function shuts down.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from functions.runtime.settings import settings

if TYPE_CHECKING:
    import ssl

    import httpx
    from pymongo.asynchronous.database import AsyncDatabase
    from pymongo.asynchronous.mongo_client import AsyncMongoClient
    from redis.asyncio import Redis

_redis: Redis | None = None
_mongo: AsyncMongoClient[dict[str, Any]] | None = None
_http: httpx.AsyncClient | None = None


def _import_redis() -> None:
    """Import redis-py without the OpenTelemetry metrics SDK it would load.

    redis-py 8 imports that SDK whenever it is installed, for client metrics kshop
    does not use (it exports Prometheus); that is a third of its import time and
    about a megabyte, paid by every function's first event. redis-py treats the SDK
    as optional, so it is hidden for the duration of this import only.
    """
    hidden = "opentelemetry.sdk.metrics"
    loaded = hidden in sys.modules
    if not loaded:
        sys.modules[hidden] = None  # type: ignore[assignment]
    try:
        import redis.asyncio  # noqa: F401
    finally:
        if not loaded:
            del sys.modules[hidden]


def redis() -> Redis:
    global _redis
    if _redis is None:
        _import_redis()
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
            verify=_trusted(settings().k_ca_certs),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
    return _http


def _trusted(ca_certs: str | None) -> ssl.SSLContext | bool:
    """httpx's usual roots, and the broker's CA when a SinkBinding gave one (K_CA_CERTS)."""
    if ca_certs is None:
        return True
    import httpx

    context = httpx.create_ssl_context()
    context.load_verify_locations(cadata=ca_certs)
    return context


def in_use() -> list[str]:
    return [name for name, client in (("mongo", _mongo), ("redis", _redis)) if client is not None]


async def close() -> None:
    global _redis, _mongo, _http
    if _redis is not None:
        from functions.runtime import pipelining  # it uses this module: imported here

        await pipelining.close()
        await _redis.aclose()
    if _mongo is not None:
        await _mongo.close()
    if _http is not None:
        await _http.aclose()
    _redis = _mongo = _http = None
    settings.cache_clear()
