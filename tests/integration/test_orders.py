"""orders against real MongoDB and Redis, publishing to a real HTTP sink."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudevents.core.v1.event import CloudEvent

from functions.dev.services import free_port
from functions.inventory.events import InventoryRejected, InventoryReserved
from functions.orders import deadlines
from functions.orders import main as orders
from functions.orders.events import OrderCancelled, OrderCompleted, OrderCreated
from functions.payments.events import PaymentFailed, PaymentSucceeded
from functions.runtime import clients
from functions.runtime.settings import settings
from functions.runtime.testing import Client, cloudevent, running
from functions.shipping.events import ShipmentCreated
from tests.fixtures.services import ServiceEnv
from tests.support.servers import Recorder, serving
from tests.support.shop import (
    Sink,
    admin,
    bearer,
    configure_auth,
    customer,
    stock,
)

pytestmark = pytest.mark.integration

PING = {"task": "expire-overdue-orders"}


@dataclass
class Shop:
    client: Client
    sink: Recorder

    async def place(self, *lines: tuple[str, int], user: str = "alice", **headers: str) -> Any:
        body = {"items": [{"sku": s, "quantity": q} for s, q in lines], "paymentToken": "tok_visa"}
        return await self.client.http.post(
            "/orders", json=body, headers={**customer(user), **headers}
        )

    async def order(self, order_id: str) -> dict[str, Any]:
        response = await self.client.http.get(f"/orders/{order_id}", headers=admin())
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    def published(self, event_type: str) -> list[dict[str, Any]]:
        return [
            {"id": r.headers["ce-id"], **json.loads(r.body)}
            for r in self.sink.requests
            if r.headers.get("ce-type") == event_type
        ]

    async def tell(self, data: Any) -> int:
        return (await self.client.send(data)).status


@pytest.fixture
async def shop(service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Shop]:
    configure_auth(monkeypatch)
    sink = Recorder()
    async with serving(sink) as url:
        monkeypatch.setenv("K_SINK", url)
        settings.cache_clear()
        async with running(orders.function) as client:
            await stock(a=10, b=10)
            yield Shop(client, sink)


async def placed(shop: Shop) -> str:
    response = await shop.place(("a", 2), ("b", 1))
    assert response.status_code == 201
    order_id: str = response.json()["id"]
    return order_id


def reserved(order_id: str) -> InventoryReserved:
    return InventoryReserved(
        order_id=order_id,
        user_id="alice",
        total_cents=750,
        currency="EUR",
        payment_token="tok_visa",
    )


def paid(order_id: str) -> PaymentSucceeded:
    return PaymentSucceeded(
        order_id=order_id, user_id="alice", amount_cents=750, currency="EUR", payment_id="ch_1"
    )


def shipped(order_id: str) -> ShipmentCreated:
    return ShipmentCreated(
        order_id=order_id,
        user_id="alice",
        carrier="kshop-post",
        tracking_number="KP000000000001",
        eta="2030-01-02",
    )


# --- placing an order -------------------------------------------------------------------


async def test_an_order_is_placed_at_catalogue_prices(shop: Shop) -> None:
    response = await shop.place(("a", 2), ("b", 1))
    assert response.status_code == 201
    order = response.json()
    assert response.headers["location"] == f"/orders/{order['id']}"
    assert order["status"] == "PENDING" and order["userId"] == "alice"
    assert order["items"] == [
        {"sku": "a", "name": "Product a", "quantity": 2, "unitPriceCents": 250},
        {"sku": "b", "name": "Product b", "quantity": 1, "unitPriceCents": 250},
    ]
    assert (order["totalCents"], order["currency"]) == (750, "EUR")
    assert order["saga"] == {"inventory": "pending", "payment": "pending", "shipment": "pending"}
    (event,) = shop.published(OrderCreated.event_type)
    assert event["orderId"] == order["id"] and event["totalCents"] == 750
    assert event["paymentToken"] == "tok_visa" and event["deadline"] == order["deadline"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"items": [{"sku": "a", "quantity": 1, "unitPriceCents": 1}]}, {"items.0.unitPriceCents"}),
        ({"items": [], "paymentToken": "tok_visa"}, {"items"}),
        (
            {"items": [{"sku": "a", "quantity": 0}], "paymentToken": "tok_visa"},
            {"items.0.quantity"},
        ),
        (
            {"items": [{"sku": "a", "quantity": 101}], "paymentToken": "tok_visa"},
            {"items.0.quantity"},
        ),
        (
            {"items": [{"sku": "a", "quantity": 1}] * 2, "paymentToken": "tok_visa"},
            {"items"},
        ),
        (
            {"items": [{"sku": f"s{i}", "quantity": 1} for i in range(26)], "paymentToken": "t"},
            {"items", "paymentToken"},
        ),
        (
            {"items": [{"sku": {"$gt": ""}, "quantity": 1}], "paymentToken": "tok_visa"},
            {"items.0.sku"},
        ),
        # Strict numbers: JSON's true and "1" are no quantity.
        (
            {"items": [{"sku": "a", "quantity": True}], "paymentToken": "tok_visa"},
            {"items.0.quantity"},
        ),
        (
            {"items": [{"sku": "a", "quantity": "1"}], "paymentToken": "tok_visa"},
            {"items.0.quantity"},
        ),
    ],
)
async def test_a_bad_order_is_refused(shop: Shop, body: dict[str, Any], fields: set[str]) -> None:
    response = await shop.client.http.post("/orders", json=body, headers=customer())
    assert response.status_code == 400
    assert {d["field"] for d in response.json()["details"]} >= fields
    assert shop.published(OrderCreated.event_type) == []


async def test_an_unknown_sku_is_named(shop: Shop) -> None:
    response = await shop.place(("a", 1), ("nope", 1))
    assert response.status_code == 400
    assert response.json()["details"] == [{"field": "items", "message": "unknown SKU nope"}]


@pytest.mark.parametrize(("permission", "status"), [(None, 401), ("orders:read", 403)])
async def test_placing_needs_the_permission(
    shop: Shop, permission: str | None, status: int
) -> None:
    headers = bearer("alice", permission) if permission else {}
    body = {"items": [{"sku": "a", "quantity": 1}], "paymentToken": "tok_visa"}
    response = await shop.client.http.post("/orders", json=body, headers=headers)
    assert response.status_code == status


async def test_an_idempotency_key_makes_a_retry_return_the_same_order(shop: Shop) -> None:
    first = await shop.place(("a", 1), **{"idempotency-key": "k1"})
    second = await shop.place(("a", 1), **{"idempotency-key": "k1"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    assert len(shop.published(OrderCreated.event_type)) == 1
    other = await shop.place(("a", 1), user="bob", **{"idempotency-key": "k1"})
    assert other.json()["id"] != first.json()["id"]
    changed = await shop.place(("a", 2), **{"idempotency-key": "k1"})
    assert changed.status_code == 409


# --- reading orders ---------------------------------------------------------------------


async def test_an_order_is_read_by_its_owner_and_admins_only(shop: Shop) -> None:
    order_id = await placed(shop)
    mine = await shop.client.http.get(f"/orders/{order_id}", headers=customer())
    assert mine.status_code == 200
    assert mine.json()["history"][0]["status"] == "PENDING"
    theirs = await shop.client.http.get(f"/orders/{order_id}", headers=customer("bob"))
    assert theirs.status_code == 404
    assert (await shop.client.http.get(f"/orders/{order_id}")).status_code == 401
    bad = await shop.client.http.get("/orders/not-an-id", headers=customer())
    assert bad.status_code == 400


async def test_admins_list_orders_by_status(shop: Shop) -> None:
    first, second = await placed(shop), await placed(shop)
    await shop.tell(reserved(second))
    listed = await shop.client.http.get("/orders", params={"status": "RESERVED"}, headers=admin())
    assert [o["id"] for o in listed.json()] == [second]
    everything = await shop.client.http.get("/orders", params={"limit": 1}, headers=admin())
    (page,) = everything.json()
    rest = await shop.client.http.get("/orders", params={"after": page["id"]}, headers=admin())
    assert {page["id"], *(o["id"] for o in rest.json())} == {first, second}
    refused = await shop.client.http.get("/orders", headers=customer())
    assert refused.status_code == 403


# --- the saga's outcomes ----------------------------------------------------------------


async def test_the_happy_path_completes_and_announces_it_once(shop: Shop) -> None:
    order_id = await placed(shop)
    for event in (reserved(order_id), paid(order_id), shipped(order_id), shipped(order_id)):
        assert await shop.tell(event) == 202
    order = await shop.order(order_id)
    assert order["status"] == "COMPLETED"
    assert [h["status"] for h in order["history"]] == ["PENDING", "RESERVED", "PAID", "COMPLETED"]
    assert order["saga"] == {"inventory": "reserved", "payment": "succeeded", "shipment": "created"}
    assert order["shipment"]["trackingNumber"] == "KP000000000001"
    (completed,) = shop.published(OrderCompleted.event_type)
    assert completed["totalCents"] == 750 and completed["trackingNumber"] == "KP000000000001"


async def test_a_payment_that_overtakes_the_reservation_still_counts(shop: Shop) -> None:
    order_id = await placed(shop)
    await shop.tell(paid(order_id))
    await shop.tell(reserved(order_id))
    order = await shop.order(order_id)
    assert [h["status"] for h in order["history"]] == ["PENDING", "PAID"]


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (
            lambda o: InventoryRejected(order_id=o, user_id="alice", short_skus=("a",)),
            "out_of_stock",
        ),
        (
            lambda o: PaymentFailed(order_id=o, user_id="alice", code="card_declined"),
            "payment_declined",
        ),
    ],
)
async def test_a_failed_step_cancels_with_its_reason(shop: Shop, outcome: Any, reason: str) -> None:
    order_id = await placed(shop)
    assert await shop.tell(outcome(order_id)) == 202
    order = await shop.order(order_id)
    assert (order["status"], order["cancelReason"]) == ("CANCELLED", reason)
    assert order["history"][-1]["reason"] == reason
    (event,) = shop.published(OrderCancelled.event_type)
    assert (event["orderId"], event["reason"]) == (order_id, reason)


async def test_a_contradiction_is_refused_into_the_dead_letters(shop: Shop) -> None:
    order_id = await placed(shop)
    answer = await shop.client.send(shipped(order_id))
    assert answer.status == 400
    assert "shipped before it was paid" in answer.json()["error"]
    assert (await shop.order(order_id))["status"] == "PENDING"


@pytest.mark.parametrize(
    ("other", "mismatched"),
    [
        ({"amount_cents": 1}, "totalCents"),
        ({"amount_cents": 751}, "totalCents"),
        ({"currency": "XXX"}, "currency"),
        ({"user_id": "bob"}, "userId"),
    ],
)
async def test_a_payment_that_does_not_match_the_order_is_refused_into_the_dead_letters(
    shop: Shop, other: dict[str, Any], mismatched: str
) -> None:
    order_id = await placed(shop)
    await shop.tell(reserved(order_id))
    answer = await shop.client.send(paid(order_id).model_copy(update=other))
    assert answer.status == 400
    assert f"does not match the order's {mismatched}" in answer.json()["error"]
    order = await shop.order(order_id)
    assert (order["status"], order["payment"]) == ("RESERVED", None)


async def test_a_reservation_that_does_not_match_the_order_is_refused(shop: Shop) -> None:
    order_id = await placed(shop)
    answer = await shop.client.send(reserved(order_id).model_copy(update={"total_cents": 6}))
    assert answer.status == 400
    assert (await shop.order(order_id))["status"] == "PENDING"


async def test_a_mismatched_payment_is_refused_even_once_the_order_has_ended(shop: Shop) -> None:
    order_id = await placed(shop)
    await shop.client.http.post(f"/orders/{order_id}/cancel", headers=customer())
    answer = await shop.client.send(paid(order_id).model_copy(update={"user_id": "bob"}))
    assert answer.status == 400


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amountCents", -1),
        ("amountCents", 0),
        ("amountCents", 2**64),  # more than BSON can store
        ("amountCents", True),
        ("amountCents", "750"),
        ("currency", ""),
        ("currency", "eur"),
    ],
)
async def test_a_payment_outside_the_rules_is_refused_and_nothing_is_stored(
    shop: Shop, field: str, value: Any
) -> None:
    order_id = await placed(shop)
    data = paid(order_id).model_dump(mode="json", by_alias=True) | {field: value}
    answer = await shop.client.send(cloudevent(data, type=PaymentSucceeded.event_type))
    assert answer.status == 400
    assert [d["field"] for d in answer.json()["details"]] == [field]
    order = await shop.order(order_id)
    assert (order["status"], order["payment"]) == ("PENDING", None)


async def test_a_late_step_after_a_cancel_changes_nothing(shop: Shop) -> None:
    order_id = await placed(shop)
    await shop.client.http.post(f"/orders/{order_id}/cancel", headers=customer())
    assert await shop.tell(reserved(order_id)) == 202
    assert await shop.tell(paid(order_id)) == 202
    order = await shop.order(order_id)
    assert [h["status"] for h in order["history"]] == ["PENDING", "CANCELLED"]


async def test_an_outcome_for_an_unknown_order_is_retried(shop: Shop) -> None:
    assert await shop.tell(reserved("ord_" + "0" * 32)) == 404


# --- cancelling ---------------------------------------------------------------------------


async def test_the_owner_cancels_before_the_pivot(shop: Shop) -> None:
    order_id = await placed(shop)
    await shop.tell(reserved(order_id))
    response = await shop.client.http.post(f"/orders/{order_id}/cancel", headers=customer())
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancelReason"]) == ("CANCELLED", "customer")
    again = await shop.client.http.post(f"/orders/{order_id}/cancel", headers=customer())
    assert again.status_code == 200
    assert len(shop.published(OrderCancelled.event_type)) == 1


async def test_a_paid_order_cannot_be_cancelled(shop: Shop) -> None:
    order_id = await placed(shop)
    await shop.tell(paid(order_id))
    response = await shop.client.http.post(f"/orders/{order_id}/cancel", headers=admin())
    assert response.status_code == 409
    assert (await shop.order(order_id))["status"] == "PAID"


async def test_nobody_else_cancels_an_order(shop: Shop) -> None:
    order_id = await placed(shop)
    response = await shop.client.http.post(f"/orders/{order_id}/cancel", headers=customer("bob"))
    assert response.status_code == 404
    assert (await shop.order(order_id))["status"] == "PENDING"


# --- deadlines ----------------------------------------------------------------------------


def tick() -> CloudEvent:
    return cloudevent(
        PING,
        type="dev.knative.sources.ping",
        source="/apis/v1/namespaces/default/pingsources/order-deadlines",
    )


async def test_the_tick_cancels_overdue_orders_before_the_pivot_only(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDER_DEADLINE_SECONDS", "0.3")
    settings.cache_clear()
    waiting, reserving, paying = await placed(shop), await placed(shop), await placed(shop)
    await shop.tell(reserved(reserving))
    await shop.tell(paid(paying))
    monkeypatch.setenv("ORDER_DEADLINE_SECONDS", "900")
    settings.cache_clear()
    fresh = await placed(shop)
    await asyncio.sleep(0.4)
    assert (await shop.client.send(tick())).status == 202
    statuses = {o: (await shop.order(o))["status"] for o in (waiting, reserving, paying, fresh)}
    assert statuses == {
        waiting: "CANCELLED",
        reserving: "CANCELLED",
        paying: "PAID",
        fresh: "PENDING",
    }
    assert {e["orderId"] for e in shop.published(OrderCancelled.event_type)} == {waiting, reserving}
    assert {e["reason"] for e in shop.published(OrderCancelled.event_type)} == {"timeout"}
    remaining = await clients.redis().zrange(clients.key("orders", "deadlines"), 0, -1)
    assert remaining == [fresh.encode()]


async def test_overlapping_ticks_cancel_each_overdue_order_once(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick that comes while a sweep runs (a slow sweep's next tick, or its retry) leaves
    that sweep's orders alone, so a backlog of overdue orders is not cancelled many times."""
    monkeypatch.setenv("ORDER_DEADLINE_SECONDS", "0.3")
    settings.cache_clear()
    overdue = {await placed(shop) for _ in range(3)}
    await asyncio.sleep(0.4)
    swept: list[str] = []
    real_advance = orders.advance

    async def advance(order_id: str, fact: Any, *args: Any, **kwargs: Any) -> Any:
        swept.append(order_id)
        return await real_advance(order_id, fact, *args, **kwargs)

    monkeypatch.setattr(orders, "advance", advance)
    answers = await asyncio.gather(*(shop.client.send(tick()) for _ in range(3)))
    assert [a.status for a in answers] == [202, 202, 202]
    assert sorted(swept) == sorted(overdue)
    assert {(await shop.order(o))["status"] for o in overdue} == {"CANCELLED"}
    assert len(shop.published(OrderCancelled.event_type)) == 3


async def test_a_claimed_deadline_comes_due_again_when_its_sweep_dies(shop: Shop) -> None:
    order_id = await placed(shop)
    later = datetime.now(UTC) + timedelta(seconds=settings().order_deadline_seconds + 1)
    assert await deadlines.claim(later, 10, lease=30) == [order_id]
    # Taken: no other sweep gets it while the lease runs...
    assert await deadlines.claim(later, 10, lease=30) == []
    # ...and once it has run out, the order is overdue again, as if never claimed.
    assert await deadlines.claim(later + timedelta(seconds=31), 10, lease=30) == [order_id]


# --- the outbox ---------------------------------------------------------------------------


async def test_no_order_event_is_lost_while_the_broker_is_down(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = free_port()
    monkeypatch.setenv("K_SINK", f"http://127.0.0.1:{down}")
    monkeypatch.setenv("PUBLISH_RETRIES", "0")
    settings.cache_clear()
    response = await shop.place(("a", 1))
    assert response.status_code == 201
    order_id = response.json()["id"]
    await shop.tell(InventoryRejected(order_id=order_id, user_id="alice", short_skus=("a",)))
    back = Sink()
    async with serving(back, port=down):
        await back.wait_for(2, within=15)  # the sweeper's next rounds
    assert [r.headers["ce-type"] for r in back.requests] == [
        OrderCreated.event_type,
        OrderCancelled.event_type,
    ]
