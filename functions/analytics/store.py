"""Daily counters in Redis: events per type, unique active users, orders and revenue."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from functions.analytics.events import ORDER_COMPLETED
from functions.runtime import clients

RETENTION = timedelta(days=400)


def _key(day: date, what: str) -> str:
    return clients.key("analytics", day.isoformat(), what)


async def record(day: date, event_type: str, user: str | None, revenue_cents: int) -> int:
    """Count one event and return the day's new count for its type.

    The caller validates everything first (see events.Activity): MULTI/EXEC does not
    roll back, so a command Redis refuses would leave the others applied, and every
    retry would count the event again.
    """
    ttl = int(RETENTION.total_seconds())
    async with clients.redis().pipeline(transaction=True) as pipe:
        pipe.hincrby(_key(day, "events"), event_type, 1)
        pipe.expire(_key(day, "events"), ttl)
        if user:
            pipe.pfadd(_key(day, "users"), user)
            pipe.expire(_key(day, "users"), ttl)
        if revenue_cents:
            pipe.incrby(_key(day, "revenue"), revenue_cents)
            pipe.expire(_key(day, "revenue"), ttl)
        results = await pipe.execute()
    return int(results[0])


async def summary(first: date, last: date) -> dict[str, Any]:
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    redis = clients.redis()
    async with redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(_key(day, "events"))
            pipe.pfcount(_key(day, "users"))
            pipe.get(_key(day, "revenue"))
        results = await pipe.execute()
    rows: list[dict[str, Any]] = []
    for i, day in enumerate(days):
        events, users, revenue = results[3 * i : 3 * i + 3]
        counts = {k.decode(): int(v) for k, v in events.items()}
        rows.append(
            {
                "day": day.isoformat(),
                "events": counts,
                "activeUsers": int(users),
                "orders": counts.get(ORDER_COMPLETED, 0),
                "revenueCents": int(revenue or 0),
            }
        )
    # HyperLogLogs merge without double counting a user active on several days.
    unique = await redis.pfcount(*(_key(d, "users") for d in days))
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "days": rows,
        "totals": {
            "events": sum(sum(r["events"].values()) for r in rows),
            "activeUsers": int(unique),
            "orders": sum(r["orders"] for r in rows),
            "revenueCents": sum(r["revenueCents"] for r in rows),
        },
    }
