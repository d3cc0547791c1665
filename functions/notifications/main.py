"""notifications: the emails people get, sent over SMTP once per thing that happened."""

import logging

from functions.notifications import mail
from functions.orders.events import CancelReason, OrderCancelled, OrderCompleted
from functions.runtime import Event, Function, NotFound
from functions.users import store as users
from functions.users.events import UserCreated

function = Function("notifications", uses={"redis", "mongo"})
log = logging.getLogger("kshop.notifications")

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
REASONS: dict[CancelReason, str] = {
    "customer": "you cancelled it",
    "timeout": "it was not paid in time",
    "out_of_stock": "some items are out of stock",
    "payment_declined": "the payment was declined",
}


def money(cents: int, currency: str) -> str:
    symbol = SYMBOLS.get(currency, f"{currency} ")
    return f"{symbol}{cents // 100}.{cents % 100:02d}"


async def _address(user_id: str) -> str | None:
    """Where the customer's mail goes now: read when sending, so a changed address counts
    and a deleted account gets nothing."""
    try:
        return (await users.get(user_id)).email
    except NotFound:
        log.info("user %s is gone: no email", user_id)
        return None


@function.on(UserCreated)
async def welcome(event: Event[UserCreated]) -> None:
    await mail.send("welcome", event.data.email, {"name": event.data.name}, key=event.data.id)


@function.on(OrderCompleted)
async def order_completed(event: Event[OrderCompleted]) -> None:
    order = event.data
    if address := await _address(order.user_id):
        context = {"order_id": order.order_id, "total": money(order.total_cents, order.currency)}
        await mail.send("order_completed", address, context, key=order.order_id)


@function.on(OrderCancelled)
async def order_cancelled(event: Event[OrderCancelled]) -> None:
    order = event.data
    if address := await _address(order.user_id):
        context = {"order_id": order.order_id, "reason": REASONS[order.reason]}
        await mail.send("order_cancelled", address, context, key=order.order_id)
