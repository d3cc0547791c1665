"""payments: charges reserved orders once, and refunds the ones cancelled anyway."""

from __future__ import annotations

from typing import Any

from cloudevents.core.v1.event import CloudEvent

from functions.inventory.events import InventoryReserved
from functions.orders.events import OrderCancelled
from functions.payments import store
from functions.payments.events import PaymentFailed, PaymentRefunded, PaymentSucceeded
from functions.runtime import Event, Function
from functions.saga import outcome

function = Function(
    "payments",
    uses={"mongo", "redis"},
    emits=[PaymentSucceeded, PaymentFailed, PaymentRefunded],
)


def _refunded(record: dict[str, Any]) -> CloudEvent | None:
    if record["status"] != "refunded":
        return None
    refunded = PaymentRefunded(
        order_id=record["_id"],
        user_id=record["userId"],
        amount_cents=record["amountCents"],
        currency=record["currency"],
        refund_id=record["refundId"],
    )
    return outcome(function, refunded, record["_id"])


@function.on(InventoryReserved)
async def charge(event: Event[InventoryReserved]) -> CloudEvent | None:
    order = event.data
    record = await store.charge(
        order.order_id, order.user_id, order.total_cents, order.currency, order.payment_token
    )
    if record["status"] == "charged":
        succeeded = PaymentSucceeded(
            order_id=order.order_id,
            user_id=order.user_id,
            amount_cents=record["amountCents"],
            currency=record["currency"],
            payment_id=record["chargeId"],
        )
        return outcome(function, succeeded, order.order_id)
    if record["status"] == "declined":
        failed = PaymentFailed(
            order_id=order.order_id, user_id=order.user_id, code=record["declineCode"]
        )
        return outcome(function, failed, order.order_id)
    return _refunded(record)


@function.on(OrderCancelled)
async def refund(event: Event[OrderCancelled]) -> CloudEvent | None:
    return _refunded(await store.cancel(event.data.order_id, event.data.user_id))
