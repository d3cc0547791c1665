"""analytics: counts every kshop event per type and day; replies when a count is round."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from functions.analytics import store
from functions.analytics.events import (
    ORDER_COMPLETED,
    Activity,
    MilestoneReached,
    Sale,
    UserActivity,
)
from functions.runtime import BadRequest, Event, Function
from functions.runtime.dispatch import validation_details

function = Function(
    "analytics", uses={"redis"}, api="functions.analytics.api:router", emits=[MilestoneReached]
)


def _day(event: Event[Any]) -> date:
    """The UTC day the event happened on, or the day it arrived when it does not say."""
    if event.time is None:
        return datetime.now(UTC).date()
    try:
        return event.time.astimezone(UTC).date()
    except OverflowError:
        # Valid RFC 3339, such as 0001-01-01T00:30:00+01:00, can fall outside
        # Python's years 1 to 9999 once in UTC: there is no day to count it on.
        raise BadRequest(
            "Invalid CloudEvent",
            [{"attribute": "time", "message": "is outside the years 1 to 9999 in UTC"}],
        ) from None


def _activity(event: Event[Any]) -> Activity:
    """What the event's data adds to the counters; BadRequest when analytics cannot read it."""
    if event.type == ORDER_COMPLETED:
        model: type[Activity] = Sale
    elif event.type.startswith("kshop.user."):
        model = UserActivity
    else:
        model = Activity
    try:
        # An event without data (`kshop send` with no --data) has nothing to read.
        return model.model_validate({} if event.data is None else event.data)
    except ValidationError as exc:
        raise BadRequest("Validation failed", validation_details(exc)) from None


def _is_milestone(count: int) -> bool:
    # 1, 10, 100, ...: a dashboard's "first order today", "hundredth sign-up".
    return count > 0 and str(count).rstrip("0") == "1"


@function.on("kshop.*")
async def count(event: Event[Any]) -> CloudEvent | None:
    if event.type == MilestoneReached.event_type:
        return None  # counting our own milestones would only echo them back
    day, activity = _day(event), _activity(event)
    total = await store.record(day, event.type, activity.user, activity.revenue_cents)
    if not _is_milestone(total):
        return None
    return function.event(MilestoneReached(day=day, counted_type=event.type, count=total))
