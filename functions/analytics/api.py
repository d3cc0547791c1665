from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from functions.analytics import store
from functions.runtime import BadRequest
from functions.runtime.auth import AUTH_RESPONSES, Claims, require

router = APIRouter(prefix="/analytics", tags=["analytics"], responses=AUTH_RESPONSES)
MAX_DAYS = 92
# Without `from`, the summary covers the week up to `to`.
DEFAULT_SPAN = timedelta(days=6)


@router.get("/summary")
async def summary(
    _: Annotated[Claims, Depends(require("analytics:read"))],
    from_: Annotated[date | None, Query(alias="from", description="First day, inclusive")] = None,
    to: Annotated[date | None, Query(description="Last day, inclusive (default today)")] = None,
) -> dict[str, Any]:
    """Events per type, unique active users, orders and revenue, per day (UTC)."""
    last = to or datetime.now(UTC).date()
    try:
        first = from_ or last - DEFAULT_SPAN
    except OverflowError:
        # The default would fall before date.min, the first day Python has.
        message = f"is required when `to` is before {date.min + DEFAULT_SPAN}"
        raise BadRequest("Validation failed", [{"field": "from", "message": message}]) from None
    if first > last:
        raise BadRequest("Validation failed", [{"field": "from", "message": "is after `to`"}])
    if (last - first).days >= MAX_DAYS:
        raise BadRequest(
            "Validation failed", [{"field": "from", "message": f"at most {MAX_DAYS} days"}]
        )
    return await store.summary(first, last)
