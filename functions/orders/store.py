"""Orders in MongoDB. The order document is the saga's semantic lock: every change is a
single-document update guarded by the status it was decided on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from functions.orders import deadlines, machine
from functions.orders.events import OrderCancelled, OrderCompleted, OrderCreated, OrderLine
from functions.orders.machine import Advance, Decision, Fact, Status
from functions.runtime import Conflict, NotFound, clients, outbox
from functions.runtime.settings import settings

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

# A status read and the guarded write after it race other events for the same
# order; a handful of rounds settles any real interleaving.
ROUNDS = 8


def orders() -> AsyncCollection[dict[str, Any]]:
    return clients.mongo()["orders"]


async def indexes() -> None:
    await orders().create_index([("status", 1), ("_id", 1)])


async def place(
    order_id: str,
    user_id: str,
    lines: list[OrderLine],
    currency: str,
    payment_token: str,
    request_hash: str,
) -> tuple[dict[str, Any], bool]:
    """Write a new PENDING order with its order.created event; or the order this id already has.

    The second value says whether the order is new.
    """
    now = outbox.now()
    deadline = now + timedelta(seconds=settings().order_deadline_seconds)
    total = sum(line.quantity * line.unit_price_cents for line in lines)
    created = OrderCreated(
        order_id=order_id,
        user_id=user_id,
        items=tuple(lines),
        total_cents=total,
        currency=currency,
        payment_token=payment_token,
        deadline=deadline,
    )
    document = {
        "_id": order_id,
        "userId": user_id,
        "status": Status.PENDING,
        "items": [line.model_dump(by_alias=True) for line in lines],
        "totalCents": total,
        "currency": currency,
        "deadline": deadline,
        "requestHash": request_hash,
        "saga": {"inventory": "pending", "payment": "pending", "shipment": "pending"},
        "history": [{"status": Status.PENDING, "reason": None, "fact": None, "at": now}],
        "createdAt": now,
        "updatedAt": now,
        outbox.FIELD: [outbox.entry(created, subject=order_id)],
    }
    await deadlines.track(order_id, deadline)
    try:
        await orders().insert_one(document)
    except DuplicateKeyError:
        existing = await get(order_id)
        if existing["requestHash"] != request_hash:
            raise Conflict("This Idempotency-Key was used for another order") from None
        return existing, False
    return document, True


async def get(order_id: str) -> dict[str, Any]:
    found = await orders().find_one({"_id": order_id}, {outbox.FIELD: 0})
    if found is None:
        raise NotFound("No such order", [{"id": order_id}])
    return found


async def status_of(order_id: str) -> Status | None:
    found = await orders().find_one({"_id": order_id}, {"status": 1})
    return Status(found["status"]) if found else None


async def page(status: Status | None, limit: int, after: str | None) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"status": status} if status else {}
    if after:
        query["_id"] = {"$gt": after}
    found = orders().find(query, {outbox.FIELD: 0, "history": 0}).sort("_id", 1).limit(limit)
    return await found.to_list()


def _announcement(
    order: dict[str, Any], decision: Advance, details: dict[str, Any]
) -> OrderCompleted | OrderCancelled | None:
    common = {
        "order_id": order["_id"],
        "user_id": order["userId"],
        "total_cents": order["totalCents"],
        "currency": order["currency"],
    }
    if decision.to == Status.COMPLETED:
        shipment = details["shipment"]
        return OrderCompleted(
            **common, carrier=shipment["carrier"], tracking_number=shipment["trackingNumber"]
        )
    if decision.to == Status.CANCELLED:
        assert decision.reason is not None
        return OrderCancelled(**common, reason=decision.reason)
    return None


async def record(
    order_id: str,
    fact: Fact,
    details: dict[str, Any] | None = None,
    terms: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], Decision]:
    """Apply a fact to the order: the order afterwards, and what the machine decided.

    `details` are fields the fact brings (the payment, the shipment), stored
    with the change. `terms` are the order's fields as the fact's event states
    them (its user, total, currency): one that differs makes the fact illegal.
    A change to COMPLETED or CANCELLED carries its announcement in the outbox,
    in the same write.
    """
    details = details or {}
    terms = terms or {}
    for _ in range(ROUNDS):
        order = await get(order_id)
        status = Status(order["status"])
        mismatched = [field for field, value in terms.items() if order.get(field) != value]
        decision = machine.decide(status, fact, mismatched)
        if not isinstance(decision, Advance):
            return order, decision
        now = outbox.now()
        changes: dict[str, Any] = {
            "status": decision.to,
            "updatedAt": now,
            **{f"saga.{step}": value for step, value in machine.PROGRESS[fact].items()},
            **details,
        }
        if decision.reason:
            changes["cancelReason"] = decision.reason
        pushes: dict[str, Any] = {
            "history": {"status": decision.to, "reason": decision.reason, "fact": fact, "at": now}
        }
        announcement = _announcement(order, decision, details)
        if announcement is not None:
            pushes[outbox.FIELD] = outbox.entry(announcement, subject=order_id)
        updated = await orders().find_one_and_update(
            {"_id": order_id, "status": status},
            {"$set": changes, "$push": pushes},
            return_document=ReturnDocument.AFTER,
        )
        if updated is not None:
            return updated, decision
    raise Conflict("The order kept changing; try again", [{"id": order_id}])
