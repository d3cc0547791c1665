"""An order's reservation: all items or none, released or shipped exactly once.

The reservation document is this function's lock for one order:

    reserving -> reserved -> shipped
              |          -> released
              -> rejected              (some item short: nothing held)
              -> released              (cancelled while reserving)
    tombstone                          (cancelled before the order arrived)

Every status change is a guarded single-document update. A release that finds
the reservation still in progress only marks it `cancelled`; the reserving
run sees the mark at its own guarded step and gives the stock back itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from functions.inventory import store
from functions.runtime import BadRequest, Conflict, clients

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

Status = Literal["reserving", "reserved", "rejected", "released", "shipped", "tombstone"]
Line = tuple[str, int]


def reservations() -> AsyncCollection[dict[str, Any]]:
    return clients.mongo()["reservations"]


async def _claim(order_id: str, initial: dict[str, Any]) -> dict[str, Any]:
    """The order's reservation, created with `initial` when there is none yet."""
    try:
        found = await reservations().find_one_and_update(
            {"_id": order_id},
            {"$setOnInsert": {**initial, "createdAt": datetime.now(UTC)}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:  # two first deliveries raced to insert: the other won
        found = await reservations().find_one({"_id": order_id})
    assert found is not None
    return found


async def _move(
    order_id: str, expected: dict[str, Any], status: Status, **fields: Any
) -> dict[str, Any] | None:
    """The reservation after the change, or None when it was not as expected."""
    return await reservations().find_one_and_update(
        {"_id": order_id, **expected},
        {"$set": {"status": status, "updatedAt": datetime.now(UTC), **fields}},
        return_document=ReturnDocument.AFTER,
    )


async def _unhold_all(order_id: str, lines: list[Line], to: str) -> None:
    await asyncio.gather(*(store.unhold(order_id, sku, quantity, to=to) for sku, quantity in lines))


def _lines(reservation: dict[str, Any]) -> list[Line]:
    return [(item["sku"], item["quantity"]) for item in reservation["items"]]


async def reserve(order_id: str, user_id: str, lines: list[Line]) -> dict[str, Any]:
    """Hold every line or none; the reservation as it ends up."""
    reservation = await _claim(
        order_id,
        {
            "userId": user_id,
            "status": "reserving",
            "items": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
        },
    )
    if reservation["status"] != "reserving":
        return reservation  # decided already, or tombstoned: a late order is refused
    lines = _lines(reservation)
    if not reservation.get("cancelled"):
        held = await asyncio.gather(*(store.hold(order_id, sku, q) for sku, q in lines))
        short = sorted(sku for (sku, _), ok in zip(lines, held, strict=True) if not ok)
        if short:
            await _unhold_all(order_id, lines, "available")
            moved = await _move(order_id, {"status": "reserving"}, "rejected", shortSkus=short)
            return moved or await _reread(order_id)
        moved = await _move(
            order_id, {"status": "reserving", "cancelled": {"$ne": True}}, "reserved"
        )
        if moved:
            return moved
    # Cancelled before or while holding: what this run held goes back.
    await _unhold_all(order_id, lines, "available")
    return await _move(order_id, {"status": "reserving"}, "released") or await _reread(order_id)


async def release(order_id: str, user_id: str) -> dict[str, Any]:
    """Give the order's stock back; a tombstone when the order has not arrived yet."""
    reservation = await _claim(order_id, {"userId": user_id, "status": "tombstone", "items": []})
    if reservation["status"] == "reserving":
        marked = await _move(order_id, {"status": "reserving"}, "reserving", cancelled=True)
        if marked:
            return marked  # the reserving run gives the stock back
        reservation = await _reread(order_id)
    if reservation["status"] == "reserved":
        await _unhold_all(order_id, _lines(reservation), "available")
        reservation = await _move(order_id, {"status": "reserved"}, "released") or await _reread(
            order_id
        )
    return reservation


async def ship(order_id: str) -> dict[str, Any]:
    """Turn the order's held stock into shipped stock."""
    reservation = await reservations().find_one({"_id": order_id})
    if reservation is None or reservation["status"] == "reserving":
        raise Conflict("The reservation is not complete yet", [{"orderId": order_id}])
    if reservation["status"] == "reserved":
        await _unhold_all(order_id, _lines(reservation), "shipped")
        reservation = await _move(order_id, {"status": "reserved"}, "shipped") or await _reread(
            order_id
        )
    if reservation["status"] != "shipped":
        # Shipping ships paid orders only, and a paid order's stock is never released.
        raise BadRequest(
            "A shipment for an order whose stock is not held",
            [{"orderId": order_id, "status": reservation["status"]}],
        )
    return reservation


async def _reread(order_id: str) -> dict[str, Any]:
    found = await reservations().find_one({"_id": order_id})
    assert found is not None
    return found
