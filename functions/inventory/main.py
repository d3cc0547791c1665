"""inventory: the catalogue, and each order's reservation (all items or none)."""

from __future__ import annotations

from cloudevents.core.v1.event import CloudEvent

from functions.inventory import reservations
from functions.inventory.events import InventoryRejected, InventoryReleased, InventoryReserved
from functions.orders.events import OrderCancelled, OrderCreated
from functions.payments.events import PaymentFailed
from functions.runtime import Event, Function
from functions.saga import outcome
from functions.shipping.events import ShipmentCreated

function = Function(
    "inventory",
    uses={"mongo", "redis"},
    api="functions.inventory.api:router",
    emits=[InventoryReserved, InventoryRejected, InventoryReleased],
)


@function.on(OrderCreated)
async def reserve(event: Event[OrderCreated]) -> CloudEvent | None:
    order = event.data
    lines = [(line.sku, line.quantity) for line in order.items]
    reservation = await reservations.reserve(order.order_id, order.user_id, lines)
    status = reservation["status"]
    if status in ("reserved", "shipped"):
        reserved = InventoryReserved(
            order_id=order.order_id,
            user_id=order.user_id,
            total_cents=order.total_cents,
            currency=order.currency,
            payment_token=order.payment_token,
        )
        return outcome(function, reserved, order.order_id)
    if status == "rejected":
        rejected = InventoryRejected(
            order_id=order.order_id, user_id=order.user_id, short_skus=reservation["shortSkus"]
        )
        return outcome(function, rejected, order.order_id)
    return _released(reservation)


async def _release(order_id: str, user_id: str) -> CloudEvent | None:
    return _released(await reservations.release(order_id, user_id))


def _released(reservation: dict[str, object]) -> CloudEvent | None:
    if reservation["status"] != "released":
        return None  # a tombstone, or nothing was held
    order_id = str(reservation["_id"])
    released = InventoryReleased(order_id=order_id, user_id=str(reservation["userId"]))
    return outcome(function, released, order_id)


@function.on(PaymentFailed)
async def release_unpaid(event: Event[PaymentFailed]) -> CloudEvent | None:
    return await _release(event.data.order_id, event.data.user_id)


@function.on(OrderCancelled)
async def release_cancelled(event: Event[OrderCancelled]) -> CloudEvent | None:
    return await _release(event.data.order_id, event.data.user_id)


@function.on(ShipmentCreated)
async def ship(event: Event[ShipmentCreated]) -> None:
    await reservations.ship(event.data.order_id)
