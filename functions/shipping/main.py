"""shipping: ships paid orders. It runs after the pivot, so it only ever moves forward."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date

from cloudevents.core.v1.event import CloudEvent

from functions.orders import store as orders
from functions.orders.machine import Status
from functions.payments.events import PaymentSucceeded
from functions.runtime import Conflict, Event, Function
from functions.saga import outcome
from functions.shipping import store
from functions.shipping.events import ShipmentCreated

function = Function("shipping", uses={"mongo", "redis"}, emits=[ShipmentCreated])
log = logging.getLogger("kshop.shipping")

# Orders hears of the same payment at the same moment and records it within
# milliseconds, or seconds under load: a short wait here spares the broker's
# retry backoff, which grows with each attempt.
PATIENCE = 1.0
POLL = 0.2


async def _settled_status(order_id: str) -> Status | None:
    """The order's status once it is past PENDING/RESERVED, or as it is after PATIENCE."""
    give_up = time.monotonic() + PATIENCE
    status = await orders.status_of(order_id)
    while status in (None, Status.PENDING, Status.RESERVED) and time.monotonic() < give_up:
        await asyncio.sleep(POLL)
        status = await orders.status_of(order_id)
    return status


@function.on(PaymentSucceeded)
async def ship(event: Event[PaymentSucceeded]) -> CloudEvent | None:
    order_id = event.data.order_id
    # The order document is the saga's lock: a charge races the deadline, and
    # only an order that recorded its payment is past the pivot. PAID is never
    # cancelled, and a cancelled order's charge is refunded by payments.
    status = await _settled_status(order_id)
    if status == Status.CANCELLED:
        log.info("order %s was cancelled before its payment counted: not shipped", order_id)
        return None
    if status not in (Status.PAID, Status.COMPLETED):
        raise Conflict("The order has not recorded its payment yet", [{"orderId": order_id}])
    shipment = await store.ship(order_id, event.data.user_id)
    created = ShipmentCreated(
        order_id=order_id,
        user_id=event.data.user_id,
        carrier=shipment["carrier"],
        tracking_number=shipment["trackingNumber"],
        eta=date.fromisoformat(shipment["eta"]),
    )
    return outcome(function, created, order_id)
