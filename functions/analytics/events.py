"""What analytics announces, and what it reads from every other function's events."""

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from functions.runtime import EventData

# The largest order total counted as revenue. A day's revenue is one Redis INCRBY
# counter, a signed 64-bit integer: at this bound it overflows only after
# 2**63 // 10**12 = 9.2 million orders of 10 billion (euros, dollars...) each in one
# day. The largest order the shop can take today (25 lines x 100 units at the
# catalogue's price cap of 10**8 cents) is 2.5 * 10**11, well below it.
MAX_ORDER_CENTS = 10**12
# Orders' event, read here without importing the orders function: one count is a sale.
ORDER_COMPLETED = "kshop.order.completed"

# "" would count one anonymous user for every event that carries it.
UserId = Annotated[str, Field(min_length=1)]


class MilestoneReached(EventData, type="kshop.analytics.milestone.reached"):
    """A daily count of one event type reached a round number (1, 10, 100, ...)."""

    day: date
    counted_type: str
    count: int


class Activity(BaseModel):
    """The data of any kshop event, as far as analytics reads it: who was active.

    Analytics counts every event type, so fields it does not read are ignored, not
    refused as EventData would. The fields it does read are strict (no 42 for "42",
    no true for 1) and checked before anything is counted: a Redis transaction does
    not roll back, so a command failing halfway would count the event again on
    every retry.
    """

    model_config = ConfigDict(
        extra="ignore", frozen=True, strict=True, alias_generator=to_camel, validate_by_name=True
    )

    user_id: UserId | None = None

    @property
    def user(self) -> str | None:
        return self.user_id

    @property
    def revenue_cents(self) -> int:
        return 0


class UserActivity(Activity):
    """A kshop.user.* event: the user it is about was active."""

    id: UserId | None = None

    @property
    def user(self) -> str | None:
        return self.user_id or self.id


class Sale(Activity):
    """An ORDER_COMPLETED event: its total is the day's revenue, so it must be there."""

    total_cents: int = Field(ge=0, le=MAX_ORDER_CENTS)

    @property
    def revenue_cents(self) -> int:
        return self.total_cents
