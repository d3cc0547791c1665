"""What the saga's tests share: tokens, a catalogue, and the saga's events for one order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.inventory import store as catalogue
from functions.orders.events import OrderCancelled, OrderCreated, OrderLine
from functions.runtime.app import Receive, Scope, Send
from functions.runtime.bearer import mint
from functions.runtime.settings import settings
from tests.support.servers import Recorder

SECRET = "saga-tests-secret-that-is-long-enough-for-hs256"
ADMIN = ("orders:admin", "inventory:write")


def configure_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    settings.cache_clear()


def bearer(sub: str, *permissions: str) -> dict[str, str]:
    return {"authorization": f"Bearer {mint(sub, permissions)}"}


def customer(sub: str = "alice") -> dict[str, str]:
    return bearer(sub, "orders:create")


def admin() -> dict[str, str]:
    return bearer("admin", *ADMIN)


async def stock(**available: int) -> None:
    """One product per keyword, at 250 cents each."""
    for sku, count in available.items():
        await catalogue.create(sku, f"Product {sku}", 250, count)


async def levels(sku: str) -> tuple[int, int, int]:
    product = await catalogue.get(sku)
    return product["available"], product["reserved"], product["shipped"]


def created(
    order: str, *lines: tuple[str, int], token: str = "tok_visa", user: str = "alice"
) -> OrderCreated:
    items = tuple(OrderLine(sku=s, name=s, quantity=q, unit_price_cents=250) for s, q in lines)
    return OrderCreated(
        order_id=order,
        user_id=user,
        items=items,
        total_cents=sum(i.quantity * i.unit_price_cents for i in items),
        currency="EUR",
        payment_token=token,
        deadline=datetime.now(UTC) + timedelta(minutes=15),
    )


def cancelled(order: str, reason: Any = "customer", user: str = "alice") -> OrderCancelled:
    return OrderCancelled(
        order_id=order, user_id=user, reason=reason, total_cents=250, currency="EUR"
    )


@dataclass
class Sink(Recorder):
    """A recorder that can be waited on."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)
        self.arrived.set()

    async def wait_for(self, count: int, within: float) -> None:
        async with asyncio.timeout(within):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()
