"""What the orders function announces. Consumers: inventory, payments, notifications, analytics."""

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, model_validator

from functions.runtime import EventData
from functions.saga import Cents, Currency, OneLinePerSku, PaymentToken, Quantity

CancelReason = Literal["customer", "timeout", "out_of_stock", "payment_declined"]


class OrderLine(BaseModel):
    model_config = EventData.model_config

    sku: str
    name: str
    quantity: Quantity
    unit_price_cents: Cents


class OrderCreated(EventData, type="kshop.order.created"):
    """A customer placed an order at catalogue prices: the saga starts."""

    order_id: str
    user_id: str
    items: Annotated[tuple[OrderLine, ...], Field(min_length=1), OneLinePerSku]
    total_cents: Cents
    currency: Currency
    payment_token: PaymentToken
    deadline: datetime

    @model_validator(mode="after")
    def _total_is_the_sum_of_the_lines(self) -> Self:
        # Inventory holds the lines and payments charges the total: they must agree.
        lines = sum(line.quantity * line.unit_price_cents for line in self.items)
        if lines != self.total_cents:
            raise ValueError(f"totalCents is {self.total_cents}, but the lines add up to {lines}")
        return self


class OrderCompleted(EventData, type="kshop.order.completed"):
    """Paid and shipped: the saga ended well."""

    order_id: str
    user_id: str
    total_cents: Cents
    currency: Currency
    carrier: str
    tracking_number: str


class OrderCancelled(EventData, type="kshop.order.cancelled"):
    """Cancelled before the pivot: inventory releases the stock and payments refunds a charge."""

    order_id: str
    user_id: str
    reason: CancelReason
    total_cents: Cents
    currency: Currency
