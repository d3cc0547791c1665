"""Shipments in MongoDB, one per order: the first label booked is the one kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from functions.runtime import clients
from functions.shipping.carrier import carrier

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection


def shipments() -> AsyncCollection[dict[str, Any]]:
    return clients.mongo()["shipments"]


async def ship(order_id: str, user_id: str) -> dict[str, Any]:
    existing = await shipments().find_one({"_id": order_id})
    if existing is not None:
        return existing
    now = datetime.now(UTC)
    label = await carrier().book(order_id, now.date())
    fields = {
        "userId": user_id,
        "carrier": label.carrier,
        "trackingNumber": label.tracking_number,
        "eta": label.eta.isoformat(),
        "createdAt": now,
    }
    try:
        found = await shipments().find_one_and_update(
            {"_id": order_id},
            {"$setOnInsert": fields},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        found = await shipments().find_one({"_id": order_id})
    assert found is not None
    return found
