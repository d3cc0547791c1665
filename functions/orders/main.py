"""orders: places orders and follows each through the saga to COMPLETED or CANCELLED."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from functions.inventory.events import InventoryRejected, InventoryReserved
from functions.orders import deadlines, store
from functions.orders.events import OrderCancelled, OrderCompleted, OrderCreated
from functions.orders.machine import BEFORE_PIVOT, TERMINAL, Advance, Decision, Fact, Illegal
from functions.payments.events import PaymentFailed, PaymentSucceeded
from functions.runtime import BadRequest, Event, Function, NotFound, outbox
from functions.shipping.events import ShipmentCreated

function = Function(
    "orders",
    uses={"mongo", "redis"},
    api="functions.orders.api:router",
    emits=[OrderCreated, OrderCompleted, OrderCancelled],
)
outbox.install(function, "orders")
function.on_startup(store.indexes)

log = logging.getLogger("kshop.orders")
PING = "dev.knative.sources.ping"
SWEEP_BATCH = 200
SWEEP_CONCURRENCY = 16


async def advance(
    order_id: str,
    fact: Fact,
    details: dict[str, Any] | None = None,
    terms: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], Decision]:
    """Record a fact on the order, then send what it announced and retire its deadline."""
    order, decision = await store.record(order_id, fact, details, terms)
    if isinstance(decision, Advance):
        log.info(
            "order %s: %s -> %s on %s", order_id, order["history"][-2]["status"], decision.to, fact
        )
        if decision.to in TERMINAL:
            await outbox.flush(function, store.orders(), order_id)
        if decision.to not in BEFORE_PIVOT:
            await deadlines.forget(order_id)
    else:
        log.info("order %s: %s ignored: %s", order_id, fact, decision.why)
    return order, decision


async def _outcome(
    order_id: str, fact: Fact, terms: Mapping[str, Any], details: dict[str, Any] | None = None
) -> None:
    order, decision = await advance(order_id, fact, details, terms)
    if isinstance(decision, Illegal):
        # A contradiction is a bug somewhere: refused, it lands in the dead letters.
        raise BadRequest(
            f"Refused: {decision.why}",
            [{"orderId": order_id, "status": order["status"], "fact": fact}],
        )


def _terms(
    user_id: str, amount_cents: int | None = None, currency: str | None = None
) -> dict[str, Any]:
    """The order's terms as an event states them: the order refuses an event that states others."""
    terms = {"userId": user_id, "totalCents": amount_cents, "currency": currency}
    return {field: value for field, value in terms.items() if value is not None}


@function.on(InventoryReserved)
async def reserved(event: Event[InventoryReserved]) -> None:
    data = event.data
    await _outcome(
        data.order_id, Fact.RESERVED, _terms(data.user_id, data.total_cents, data.currency)
    )


@function.on(InventoryRejected)
async def rejected(event: Event[InventoryRejected]) -> None:
    await _outcome(event.data.order_id, Fact.REJECTED, _terms(event.data.user_id))


@function.on(PaymentSucceeded)
async def paid(event: Event[PaymentSucceeded]) -> None:
    data = event.data
    payment = {"paymentId": data.payment_id, "amountCents": data.amount_cents}
    terms = _terms(data.user_id, data.amount_cents, data.currency)
    await _outcome(data.order_id, Fact.PAID, terms, {"payment": payment})


@function.on(PaymentFailed)
async def payment_failed(event: Event[PaymentFailed]) -> None:
    details = {"payment": {"code": event.data.code}}
    await _outcome(event.data.order_id, Fact.PAYMENT_FAILED, _terms(event.data.user_id), details)


@function.on(ShipmentCreated)
async def shipped(event: Event[ShipmentCreated]) -> None:
    shipment = {
        "carrier": event.data.carrier,
        "trackingNumber": event.data.tracking_number,
        "eta": event.data.eta.isoformat(),
    }
    terms = _terms(event.data.user_id)
    await _outcome(event.data.order_id, Fact.SHIPPED, terms, {"shipment": shipment})


async def _expire(order_id: str) -> None:
    try:
        _, decision = await advance(order_id, Fact.TIMEOUT)
    except NotFound:
        decision = None  # tracked, but its write never happened
    if not isinstance(decision, Advance):
        await deadlines.forget(order_id)


# Ticks may overlap (each sweep claims what it cancels), so no idempotency record is kept.
@function.on(PING, idempotent=False)
async def expire_overdue(event: Event[Any]) -> None:
    """Cancel every order still before the pivot past its deadline."""
    gate = asyncio.Semaphore(SWEEP_CONCURRENCY)

    async def expire(order_id: str) -> None:
        async with gate:
            await _expire(order_id)

    while True:
        overdue = await deadlines.claim(datetime.now(UTC), SWEEP_BATCH)
        await asyncio.gather(*(expire(order_id) for order_id in overdue))
        if len(overdue) < SWEEP_BATCH:
            return
