"""Each order's deadline in a Redis sorted set: the overdue ones are a range, never a scan.

An order is tracked before it is written, so none can exist untracked; one
that was never written, or has passed its pivot, is dropped when it comes due.
"""

from __future__ import annotations

from datetime import datetime

from functions.runtime import clients


def _key() -> str:
    return clients.key("orders", "deadlines")


async def track(order_id: str, deadline: datetime) -> None:
    # NX: a retried POST must not push its order's deadline back.
    await clients.redis().zadd(_key(), {order_id: deadline.timestamp()}, nx=True)


async def forget(order_id: str) -> None:
    await clients.redis().zrem(_key(), order_id)


async def due(now: datetime, limit: int) -> list[str]:
    found = await clients.redis().zrangebyscore(_key(), "-inf", now.timestamp(), start=0, num=limit)
    return [member.decode() if isinstance(member, bytes) else str(member) for member in found]
