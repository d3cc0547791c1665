"""shipping against real MongoDB and Redis: paid orders only, once each."""

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import pytest

from functions.orders.store import orders
from functions.payments.events import PaymentSucceeded
from functions.runtime.testing import Client, running
from functions.shipping import main as shipping
from functions.shipping.events import ShipmentCreated
from functions.shipping.store import shipments
from tests.fixtures.services import ServiceEnv

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(service_env: ServiceEnv) -> AsyncIterator[Client]:
    async with running(shipping.function) as client:
        yield client


async def order_in(status: str, order_id: str = "ord_1") -> str:
    await orders().insert_one({"_id": order_id, "userId": "alice", "status": status})
    return order_id


def paid(order_id: str = "ord_1") -> PaymentSucceeded:
    return PaymentSucceeded(
        order_id=order_id, user_id="alice", amount_cents=500, currency="EUR", payment_id="ch_1"
    )


async def test_a_paid_order_ships_once_with_a_tracking_number_and_eta(client: Client) -> None:
    await order_in("PAID")
    first = await client.send(paid())
    reply = first.reply
    assert reply is not None and reply.get_type() == ShipmentCreated.event_type
    data = first.data
    assert data["carrier"] == "kshop-post" and data["trackingNumber"].startswith("KP")
    assert date.fromisoformat(data["eta"]) > date.today()
    second = await client.send(paid())  # another ce-id, the same payment
    assert second.reply is not None
    assert (second.reply.get_id(), second.reply.get_data()) == (reply.get_id(), data)
    assert await shipments().count_documents({}) == 1


async def test_an_order_that_has_not_recorded_its_payment_is_retried(client: Client) -> None:
    await order_in("RESERVED")
    assert (await client.send(paid())).status == 409
    assert await shipments().count_documents({}) == 0


async def test_a_payment_the_order_records_meanwhile_is_shipped_at_once(client: Client) -> None:
    await order_in("RESERVED")
    shipping_it = asyncio.create_task(client.send(paid()))
    await asyncio.sleep(0.2)
    await orders().update_one({"_id": "ord_1"}, {"$set": {"status": "PAID"}})
    answer = await shipping_it
    assert answer.reply is not None and answer.reply.get_type() == ShipmentCreated.event_type


async def test_an_order_cancelled_before_its_payment_counted_is_not_shipped(
    client: Client,
) -> None:
    await order_in("CANCELLED")
    answer = await client.send(paid())
    assert (answer.status, answer.body) == (202, b"")
    assert await shipments().count_documents({}) == 0
