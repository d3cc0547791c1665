"""analytics: counts every kshop event per type and day; replies when a count is round."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from functions.analytics import store
from functions.analytics.events import MilestoneReached
from functions.runtime import Event, Function

function = Function(
    "analytics", uses={"redis"}, api="functions.analytics.api:router", emits=[MilestoneReached]
)


def _user(event: Event[Any]) -> str | None:
    """Who was active: the acting user of an order, or the user a user event is about."""
    data = event.data if isinstance(event.data, dict) else {}
    user = data.get("userId") or (data.get("id") if event.type.startswith("kshop.user.") else None)
    return str(user) if user else None


def _revenue(event: Event[Any]) -> int:
    if event.type != "kshop.order.completed" or not isinstance(event.data, dict):
        return 0
    total = event.data.get("totalCents", 0)
    return total if isinstance(total, int) else 0


def _is_milestone(count: int) -> bool:
    # 1, 10, 100, ...: a dashboard's "first order today", "hundredth sign-up".
    return count > 0 and str(count).rstrip("0") == "1"


@function.on("kshop.*")
async def count(event: Event[Any]) -> CloudEvent | None:
    if event.type == MilestoneReached.event_type:
        return None  # counting our own milestones would only echo them back
    day = (event.time or datetime.now(UTC)).astimezone(UTC).date()
    total = await store.record(day, event.type, _user(event), _revenue(event))
    if not _is_milestone(total):
        return None
    return function.event(MilestoneReached(day=day, counted_type=event.type, count=total))
