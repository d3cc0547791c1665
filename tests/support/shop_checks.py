"""Reading the shop's state straight from its stores, to check the saga's invariants."""

from __future__ import annotations

from collections import Counter
from typing import Any

from functions.inventory.reservations import reservations
from functions.inventory.store import products
from functions.orders.store import orders
from functions.payments.gateway import SimulatedGateway
from functions.shipping.store import shipments


async def net_charged() -> Counter[str]:
    """Per order: what the gateway took and did not give back."""
    net: Counter[str] = Counter()
    async for entry in SimulatedGateway.books().find({"approved": True}):
        net[entry["_id"]] += 0 if entry["refundId"] else entry["amountCents"]
    return net


async def charges() -> Counter[str]:
    """Per order: how many approved charges the gateway holds."""
    found: Counter[str] = Counter()
    async for entry in SimulatedGateway.books().find({"approved": True}):
        found[entry["_id"]] += 1
    return found


async def shipped_orders() -> set[str]:
    return {s["_id"] async for s in shipments().find({}, {"_id": 1})}


async def stock() -> dict[str, dict[str, Any]]:
    return {p["_id"]: p async for p in products().find({})}


async def all_orders() -> dict[str, dict[str, Any]]:
    return {o["_id"]: o async for o in orders().find({})}


async def reservation_statuses() -> dict[str, str]:
    return {r["_id"]: r["status"] async for r in reservations().find({})}
