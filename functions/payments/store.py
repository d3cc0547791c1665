"""Each order's payment record, and the rules that charge it once and refund it once.

    charging -> charged -> refunded
             -> declined
             -> void       (cancelled with no charge found)
    void                   (cancelled before the charge was asked for: a tombstone)

A cancel sets `cancelled` whatever the status, in one upsert. Whoever then
finds an approved charge under a cancelled record refunds it: the cancel
itself, or a charge that was still in flight when the cancel came. No card
data is stored: the token is used for the charge and forgotten.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from functions.payments.gateway import GatewayUnavailable, gateway
from functions.runtime import Unavailable, clients

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

Status = Literal["charging", "charged", "declined", "refunded", "void"]


def payments() -> AsyncCollection[dict[str, Any]]:
    return clients.mongo()["payments"]


async def _upsert(order_id: str, update: dict[str, Any]) -> dict[str, Any]:
    try:
        found = await payments().find_one_and_update(
            {"_id": order_id}, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:  # two first deliveries raced to insert: try again as an update
        found = await payments().find_one_and_update(
            {"_id": order_id}, update, return_document=ReturnDocument.AFTER
        )
    assert found is not None
    return found


async def _move(
    order_id: str, expected: dict[str, Any], status: Status, **fields: Any
) -> dict[str, Any] | None:
    return await payments().find_one_and_update(
        {"_id": order_id, **expected},
        {"$set": {"status": status, "updatedAt": datetime.now(UTC), **fields}},
        return_document=ReturnDocument.AFTER,
    )


async def _reread(order_id: str) -> dict[str, Any]:
    found = await payments().find_one({"_id": order_id})
    assert found is not None
    return found


async def charge(
    order_id: str, user_id: str, amount_cents: int, currency: str, token: str
) -> dict[str, Any]:
    """Charge the order once; the record as it ends up."""
    now = datetime.now(UTC)
    record = await _upsert(
        order_id,
        {
            "$setOnInsert": {
                "userId": user_id,
                "status": "charging",
                "amountCents": amount_cents,
                "currency": currency,
                "createdAt": now,
                "updatedAt": now,
            }
        },
    )
    if record["status"] == "charging" and not record.get("cancelled"):
        try:
            result = await gateway().charge(order_id, amount_cents, currency, token)
        except GatewayUnavailable as exc:
            raise Unavailable(f"The payment gateway failed: {exc}") from exc
        if result.approved:
            moved = await _move(
                order_id,
                {"status": "charging", "cancelled": {"$ne": True}},
                "charged",
                chargeId=result.id,
            )
        else:
            moved = await _move(
                order_id, {"status": "charging"}, "declined", declineCode=result.decline_code
            )
        record = moved or await _reread(order_id)
    if record.get("cancelled") and record["status"] in ("charging", "void"):
        return await _settle_cancelled(record)
    return record


async def cancel(order_id: str, user_id: str) -> dict[str, Any]:
    """The order was cancelled: refund its charge, or leave a tombstone against a late one."""
    now = datetime.now(UTC)
    record = await _upsert(
        order_id,
        {
            "$set": {"cancelled": True, "updatedAt": now},
            "$setOnInsert": {
                "userId": user_id,
                "status": "void",
                "amountCents": 0,
                "currency": None,
                "createdAt": now,
            },
        },
    )
    if record["status"] in ("charging", "charged", "void"):
        return await _settle_cancelled(record)
    return record


async def _settle_cancelled(record: dict[str, Any]) -> dict[str, Any]:
    order_id = record["_id"]
    try:
        found = await gateway().find(order_id)
        if found is None or not found.approved:
            # A charge still in flight sees `cancelled` when it lands, and refunds itself.
            return await _move(order_id, {"status": "charging"}, "void") or await _reread(order_id)
        refunded = await gateway().refund(order_id)
    except GatewayUnavailable as exc:
        raise Unavailable(f"The payment gateway failed: {exc}") from exc
    return await _move(
        order_id,
        {"status": {"$in": ["charging", "charged", "void"]}},
        "refunded",
        chargeId=refunded.id,
        refundId=refunded.refund_id,
        amountCents=refunded.amount_cents,
        currency=refunded.currency,
    ) or await _reread(order_id)
