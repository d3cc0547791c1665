"""The catalogue: products with their price and stock, in MongoDB.

Stock is conserved per SKU: `available + reserved + shipped` changes only by a
restock. Each reservation of an order is marked in the product's `holds` in
the same single-document update that moves the quantity, so a re-run can never
take or give back the same order's stock twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from functions.runtime import clients
from functions.runtime.errors import Conflict, NotFound

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

CURRENCY = "EUR"
MAX_STOCK = 1_000_000_000


def products() -> AsyncCollection[dict[str, Any]]:
    return clients.mongo()["products"]


async def create(sku: str, name: str, price_cents: int, available: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    document = {
        "_id": sku,
        "name": name,
        "priceCents": price_cents,
        "available": available,
        "reserved": 0,
        "shipped": 0,
        "holds": [],
        "createdAt": now,
        "updatedAt": now,
    }
    try:
        await products().insert_one(document)
    except DuplicateKeyError:
        raise Conflict("A product with this SKU exists", [{"sku": sku}]) from None
    return document


async def get(sku: str) -> dict[str, Any]:
    found = await products().find_one({"_id": sku})
    if found is None:
        raise NotFound("No such product", [{"sku": sku}])
    return found


async def page(limit: int, after: str | None) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"_id": {"$gt": after}} if after else {}
    return await products().find(query).sort("_id", 1).limit(limit).to_list()


async def restock(sku: str, quantity: int) -> dict[str, Any]:
    """Add stock; NotFound for an unknown SKU, Conflict past MAX_STOCK."""
    updated = await products().find_one_and_update(
        {"_id": sku, "available": {"$lte": MAX_STOCK - quantity}},
        {"$inc": {"available": quantity}, "$set": {"updatedAt": datetime.now(UTC)}},
        return_document=ReturnDocument.AFTER,
    )
    if updated is None:
        await get(sku)
        raise Conflict(f"Stock would exceed {MAX_STOCK}", [{"sku": sku}])
    return updated


async def quote(skus: list[str]) -> dict[str, dict[str, Any]]:
    """Name and price of each known SKU: what an order may charge, read from the catalogue."""
    found = products().find({"_id": {"$in": skus}}, {"name": 1, "priceCents": 1})
    return {document["_id"]: document async for document in found}


async def hold(order_id: str, sku: str, quantity: int) -> bool:
    """Move quantity from available to reserved for the order; False when short."""
    result = await products().update_one(
        {"_id": sku, "available": {"$gte": quantity}, "holds": {"$ne": order_id}},
        {"$inc": {"available": -quantity, "reserved": quantity}, "$push": {"holds": order_id}},
    )
    if result.modified_count:
        return True
    # A re-run finds its own hold already in place.
    return await products().count_documents({"_id": sku, "holds": order_id}) > 0


async def unhold(order_id: str, sku: str, quantity: int, *, to: str) -> None:
    """Move the order's held quantity to `available` (a release) or `shipped`."""
    await products().update_one(
        {"_id": sku, "holds": order_id},
        {"$inc": {"reserved": -quantity, to: quantity}, "$pull": {"holds": order_id}},
    )
