"""The order saga end to end: every function a real process, the dev broker between them,
real MongoDB-wire, Redis and SMTP servers. Each scenario is driven through the HTTP APIs.
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from functions.dev.broker.records import Outcome
from functions.orders.machine import Status
from functions.payments.store import payments
from tests.support.saga_stack import eventually
from tests.support.shop import bearer
from tests.support.shop_checks import charges, net_charged, reservation_statuses, shipped_orders
from tests.support.shop_stack import SAGA, Shop, running_shop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def prompt(
    redis_url: str, mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Shop]:
    """A shop with a fast gateway, and analytics counting."""
    workdir = tmp_path_factory.mktemp("prompt")
    async with running_shop(redis_url, mongodb_url, workdir, (*SAGA, "analytics")) as shop:
        yield shop


@pytest.fixture(scope="module")
async def slow(
    redis_url: str, mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Shop]:
    """A shop whose orders must be paid within 3 s and whose charges take 8 s.

    The deadline must fall after the reservation, which takes well under a second
    on a quiet machine but over one on a loaded one, and before the charge lands
    (the deadline sweep ticks every second).
    """
    workdir = tmp_path_factory.mktemp("slow")
    overrides = {"PAYMENT_GATEWAY_LATENCY": "8", "ORDER_DEADLINE_SECONDS": "3"}
    async with running_shop(redis_url, mongodb_url, workdir, overrides=overrides) as shop:
        yield shop


async def levels(shop: Shop, sku: str) -> tuple[int, int, int]:
    product = (await shop.stack.http("inventory").get(f"/products/{sku}")).json()
    return product["available"], product["reserved"], product["shipped"]


def history(order: dict[str, object]) -> list[str]:
    steps = order["history"]
    assert isinstance(steps, list)
    return [step["status"] for step in steps]


def no_failures(shop: Shop) -> None:
    failed = shop.stack.outcomes(Outcome.FAILED, Outcome.DEAD_LETTERED, Outcome.DROPPED)
    assert failed == []


async def test_the_happy_path_completes_with_one_charge_one_shipment_and_one_email(
    prompt: Shop,
) -> None:
    await prompt.products(price_cents=1999, mug=5, tee=3)
    ada = await prompt.customer("Ada")
    order_id = await prompt.place(ada, ("mug", 2), ("tee", 1))

    order = await prompt.settled(order_id)
    assert order["status"] == Status.COMPLETED
    assert history(order) == ["PENDING", "RESERVED", "PAID", "COMPLETED"]
    assert order["saga"] == {"inventory": "reserved", "payment": "succeeded", "shipment": "created"}
    assert order["shipment"]["trackingNumber"].startswith("KP")
    assert (await levels(prompt, "mug"), await levels(prompt, "tee")) == ((3, 0, 2), (2, 0, 1))
    assert (await net_charged())[order_id] == order["totalCents"] == 3 * 1999
    assert order_id in await shipped_orders()
    await eventually(lambda: _mails(prompt, order_id, 1), within=10, what="the email")
    assert prompt.mails_about(order_id) == [f"Your kshop order {order_id} is on its way"]

    # Analytics counts the completed order and its revenue for today.
    summary = await prompt.stack.http("analytics").get(
        "/analytics/summary", headers=bearer("admin", "analytics:read")
    )
    today = datetime.now(UTC).date().isoformat()
    (day,) = [d for d in summary.json()["days"] if d["day"] == today]
    assert (day["orders"], day["revenueCents"]) == (1, 3 * 1999)
    no_failures(prompt)


async def test_insufficient_stock_cancels_without_holding_or_charging(prompt: Shop) -> None:
    await prompt.products(lamp=1, desk=5)
    bob = await prompt.customer("Bob")
    order_id = await prompt.place(bob, ("desk", 1), ("lamp", 2))

    order = await prompt.settled(order_id)
    assert (order["status"], order["cancelReason"]) == ("CANCELLED", "out_of_stock")
    assert order["saga"]["inventory"] == "rejected"
    assert (await levels(prompt, "lamp"), await levels(prompt, "desk")) == ((1, 0, 0), (5, 0, 0))
    assert (await charges())[order_id] == 0
    await eventually(lambda: _mails(prompt, order_id, 1), within=10, what="the email")
    assert prompt.mails_about(order_id) == [f"Your kshop order {order_id} was cancelled"]
    no_failures(prompt)


async def test_a_declined_payment_cancels_and_releases_the_stock(prompt: Shop) -> None:
    await prompt.products(chair=4)
    cy = await prompt.customer("Cy")
    order_id = await prompt.place(cy, ("chair", 3), token="tok_declined")

    order = await prompt.settled(order_id)
    assert (order["status"], order["cancelReason"]) == ("CANCELLED", "payment_declined")
    assert history(order) == ["PENDING", "RESERVED", "CANCELLED"]

    async def released() -> bool:
        return await levels(prompt, "chair") == (4, 0, 0)

    await eventually(released, within=10, what="the release")
    assert (await reservation_statuses())[order_id] == "released"
    assert (await net_charged())[order_id] == 0
    assert order_id not in await shipped_orders()
    no_failures(prompt)


async def test_a_deadline_before_payment_releases_and_refunds_the_late_charge(
    slow: Shop,
) -> None:
    await slow.products(clock=2)
    di = await slow.customer("Di")
    order_id = await slow.place(di, ("clock", 2))

    order = await slow.settled(order_id, within=15)
    assert (order["status"], order["cancelReason"]) == ("CANCELLED", "timeout")
    assert history(order) == ["PENDING", "RESERVED", "CANCELLED"]  # the charge was in flight

    async def refunded() -> bool:
        record = await payments().find_one({"_id": order_id})
        return record is not None and record["status"] == "refunded"

    # The charge lands after the cancel: it happened, and is paid back.
    await eventually(refunded, within=20, what="the refund")
    assert (await charges())[order_id] == 1
    assert (await net_charged())[order_id] == 0
    assert await levels(slow, "clock") == (2, 0, 0)
    assert order_id not in await shipped_orders()
    assert (await slow.order(order_id))["status"] == "CANCELLED"
    assert slow.mails_about(order_id) == [f"Your kshop order {order_id} was cancelled"]
    no_failures(slow)


async def test_a_customer_cancel_before_the_pivot_undoes_every_step(slow: Shop) -> None:
    await slow.products(vase=3)
    ed = await slow.customer("Ed")
    order_id = await slow.place(ed, ("vase", 1))
    response = await slow.stack.http("orders").post(f"/orders/{order_id}/cancel", headers=ed)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancelReason"]) == ("CANCELLED", "customer")

    async def undone() -> bool:
        record = await payments().find_one({"_id": order_id})
        settled = record is not None and record["status"] in ("void", "refunded")
        return settled and await levels(slow, "vase") == (3, 0, 0)

    await eventually(undone, within=20, what="the compensations")
    assert (await net_charged())[order_id] == 0
    assert order_id not in await shipped_orders()
    await eventually(lambda: _mails(slow, order_id, 1), within=10, what="the email")
    no_failures(slow)


async def _mails(shop: Shop, order_id: str, count: int) -> bool:
    return len(shop.mails_about(order_id)) >= count
