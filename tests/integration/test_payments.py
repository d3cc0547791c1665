"""payments against real MongoDB and Redis, with the simulated gateway's books in MongoDB."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from functions.inventory.events import InventoryReserved
from functions.payments import main as payments
from functions.payments.events import PaymentFailed, PaymentRefunded, PaymentSucceeded
from functions.payments.gateway import SimulatedGateway
from functions.payments.store import payments as records
from functions.runtime.settings import settings
from functions.runtime.testing import Client, cloudevent, running
from tests.fixtures.services import ServiceEnv
from tests.support.shop import cancelled

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("PAYMENT_DECLINE_ABOVE_CENTS", "100000")
    settings.cache_clear()
    async with running(payments.function) as client:
        yield client


def reserved(order: str, total: int = 1250, token: str = "tok_visa") -> InventoryReserved:
    return InventoryReserved(
        order_id=order, user_id="alice", total_cents=total, currency="EUR", payment_token=token
    )


async def books(order: str) -> list[dict[str, Any]]:
    return await SimulatedGateway.books().find({"_id": order}).to_list()


async def net_charged(order: str) -> int:
    return sum(e["amountCents"] for e in await books(order) if e["approved"] and not e["refundId"])


async def test_a_reserved_order_is_charged_once(client: Client) -> None:
    first = await client.send(reserved("ord_1"))
    assert first.status == 200
    reply = first.reply
    assert reply is not None and reply.get_type() == PaymentSucceeded.event_type
    data = first.data
    assert data["amountCents"] == 1250 and data["paymentId"].startswith("ch_")
    again = await client.send(reserved("ord_1"))  # another ce-id, the same order
    assert again.reply is not None
    assert (again.reply.get_id(), again.reply.get_data()) == (reply.get_id(), data)
    assert len(await books("ord_1")) == 1
    assert await net_charged("ord_1") == 1250


@pytest.mark.parametrize(
    ("token", "total", "code"),
    [("tok_declined", 100, "card_declined"), ("tok_visa", 100_001, "amount_too_large")],
)
async def test_a_declined_charge_fails_the_payment(
    client: Client, token: str, total: int, code: str
) -> None:
    answer = await client.send(reserved("ord_1", total, token))
    reply = answer.reply
    assert reply is not None and reply.get_type() == PaymentFailed.event_type
    assert answer.data["code"] == code
    assert await net_charged("ord_1") == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("totalCents", -5000),
        ("totalCents", 0),
        ("totalCents", 2**64),  # more than BSON can store
        ("totalCents", True),
        ("totalCents", "1250"),
        ("currency", ""),
        ("currency", "euro"),
        ("paymentToken", ""),
        ("paymentToken", 42),
    ],
)
async def test_a_charge_outside_the_rules_is_refused_and_never_reaches_the_gateway(
    client: Client, field: str, value: Any
) -> None:
    data = reserved("ord_1").model_dump(mode="json", by_alias=True) | {field: value}
    answer = await client.send(cloudevent(data, type=InventoryReserved.event_type))
    assert answer.status == 400
    assert [d["field"] for d in answer.json()["details"]] == [field]
    assert await records().find_one({"_id": "ord_1"}) is None
    assert await books("ord_1") == []


async def test_a_charged_order_that_is_cancelled_is_refunded_once(client: Client) -> None:
    await client.send(reserved("ord_1"))
    first = await client.send(cancelled("ord_1", "timeout"))
    reply = first.reply
    assert reply is not None and reply.get_type() == PaymentRefunded.event_type
    assert first.data["amountCents"] == 1250
    second = await client.send(cancelled("ord_1", "timeout"))
    assert second.reply is not None and second.reply.get_id() == reply.get_id()
    assert await net_charged("ord_1") == 0
    (entry,) = await books("ord_1")
    assert entry["refundId"] == first.data["refundId"]


async def test_a_cancel_before_the_charge_leaves_a_tombstone(client: Client) -> None:
    tombstone = await client.send(cancelled("ord_1"))
    assert (tombstone.status, tombstone.body) == (202, b"")
    late = await client.send(reserved("ord_1"))
    assert (late.status, late.body) == (202, b"")
    assert await books("ord_1") == []


async def test_a_cancel_while_the_charge_is_in_flight_refunds_it(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMENT_GATEWAY_LATENCY", "0.2")
    settings.cache_clear()
    charging = asyncio.create_task(client.send(reserved("ord_1")))
    await asyncio.sleep(0.1)
    cancelling = await client.send(cancelled("ord_1", "timeout"))
    charged = await charging
    # Whichever saw the charge land announces the refund: one event, however many said it.
    replies = {(a.reply.get_type(), a.reply.get_id()) for a in (charged, cancelling) if a.reply}
    assert replies == {(PaymentRefunded.event_type, "ord_1:kshop.payment.refunded")}
    assert len(await books("ord_1")) == 1
    assert await net_charged("ord_1") == 0
    assert (await records().find_one({"_id": "ord_1"}) or {})["status"] == "refunded"


async def test_a_gateway_failure_is_retried_and_charges_once(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMENT_GATEWAY_FAILURE_RATE", "1")
    settings.cache_clear()
    failing = await client.send(reserved("ord_1"))
    assert failing.status == 503
    monkeypatch.setenv("PAYMENT_GATEWAY_FAILURE_RATE", "0")
    settings.cache_clear()
    answer = await client.send(reserved("ord_1"))
    assert answer.reply is not None and answer.reply.get_type() == PaymentSucceeded.event_type
    assert len(await books("ord_1")) == 1


async def test_no_card_data_is_stored(client: Client) -> None:
    await client.send(reserved("ord_1", token="tok_secret_card_token"))
    await client.send(cancelled("ord_1"))
    stored = [await records().find_one({"_id": "ord_1"}), *await books("ord_1")]
    assert "tok_secret_card_token" not in repr(stored)
