"""What the orders function announces. Consumers: inventory, payments, notifications, analytics."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from functions.runtime import EventData

CancelReason = Literal["customer", "timeout", "out_of_stock", "payment_declined"]


class OrderLine(BaseModel):
    model_config = EventData.model_config

    sku: str
    name: str
    quantity: int = Field(ge=1)
    unit_price_cents: int = Field(ge=0)


class OrderCreated(EventData, type="kshop.order.created"):
    """A customer placed an order at catalogue prices: the saga starts."""

    order_id: str
    user_id: str
    items: tuple[OrderLine, ...] = Field(min_length=1)
    total_cents: int = Field(ge=0)
    currency: str
    # A gateway token for the customer's card, never the card itself.
    payment_token: str
    deadline: datetime


class OrderCompleted(EventData, type="kshop.order.completed"):
    """Paid and shipped: the saga ended well."""

    order_id: str
    user_id: str
    total_cents: int
    currency: str
    carrier: str
    tracking_number: str


class OrderCancelled(EventData, type="kshop.order.cancelled"):
    """Cancelled before the pivot: inventory releases the stock and payments refunds a charge."""

    order_id: str
    user_id: str
    reason: CancelReason
    total_cents: int
    currency: str
