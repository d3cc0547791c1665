"""Each order's deadline in a Redis sorted set: the overdue ones are a range, never a scan.

An order is tracked before it is written, so none can exist untracked; one
that was never written, or has passed its pivot, is dropped when it comes due.
"""

from __future__ import annotations

from datetime import datetime

from functions.runtime import clients

# A sweep takes the overdue orders it is about to cancel by moving their deadlines
# this far ahead. Ticks come whatever the last sweep is doing (every second in the
# tests, and a slow sweep's tick is retried), so without a claim every sweep still
# running cancelled the same orders again: under load dozens at once, each order's
# cancel repeated for every one of them. A sweep that dies leaves its orders due again
# once the lease ends. A minute: longer than a sweep of a whole batch takes on a busy
# machine, so a live sweep keeps what it took; and one PingSource period in a cluster.
CLAIM_LEASE = 60.0

# The range and the move are one step, so two sweeps never take the same order.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], member)
end
return due
"""


def _key() -> str:
    return clients.key("orders", "deadlines")


async def track(order_id: str, deadline: datetime) -> None:
    # NX: a retried POST must not push its order's deadline back.
    await clients.redis().zadd(_key(), {order_id: deadline.timestamp()}, nx=True)


async def forget(order_id: str) -> None:
    await clients.redis().zrem(_key(), order_id)


async def claim(now: datetime, limit: int, lease: float = CLAIM_LEASE) -> list[str]:
    """Up to `limit` orders overdue at `now`, taken from every other sweep for `lease` s."""
    moment = now.timestamp()
    found = await clients.redis().eval(_CLAIM, 1, _key(), moment, limit, moment + lease)
    return [member.decode() if isinstance(member, bytes) else str(member) for member in found]
