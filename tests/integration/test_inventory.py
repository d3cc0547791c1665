"""inventory against real MongoDB and Redis: the catalogue API and each order's reservation."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from functions.inventory import main as inventory
from functions.inventory.events import InventoryRejected, InventoryReleased, InventoryReserved
from functions.inventory.reservations import reservations
from functions.orders.events import OrderCreated
from functions.payments.events import PaymentFailed
from functions.runtime.testing import Client, cloudevent, running
from functions.shipping.events import ShipmentCreated
from tests.fixtures.services import ServiceEnv
from tests.support.shop import (
    admin,
    bearer,
    cancelled,
    configure_auth,
    created,
    levels,
    stock,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    configure_auth(monkeypatch)
    async with running(inventory.function) as client:
        yield client


def shipment(order: str) -> ShipmentCreated:
    return ShipmentCreated(
        order_id=order, user_id="alice", carrier="c", tracking_number="t", eta="2030-01-01"
    )


# --- the catalogue API ------------------------------------------------------------------


async def test_an_admin_creates_a_product_and_anyone_reads_it(client: Client) -> None:
    body = {"sku": "mug-1", "name": "Mug", "priceCents": 1250, "available": 7}
    response = await client.http.post("/products", json=body, headers=admin())
    assert response.status_code == 201
    assert response.headers["location"] == "/products/mug-1"
    read = await client.http.get("/products/mug-1")
    assert read.json() == {
        "sku": "mug-1",
        "name": "Mug",
        "priceCents": 1250,
        "currency": "EUR",
        "available": 7,
        "reserved": 0,
        "shipped": 0,
    }
    again = await client.http.post("/products", json=body, headers=admin())
    assert again.status_code == 409


@pytest.mark.parametrize(("permission", "status"), [(None, 401), ("orders:create", 403)])
async def test_only_inventory_writers_change_the_catalogue(
    client: Client, permission: str | None, status: int
) -> None:
    headers = bearer("bob", permission) if permission else {}
    body = {"sku": "mug-1", "name": "Mug", "priceCents": 1}
    assert (await client.http.post("/products", json=body, headers=headers)).status_code == status
    restock = {"items": [{"sku": "mug-1", "quantity": 1}]}
    response = await client.http.post("/products/restock", json=restock, headers=headers)
    assert response.status_code == status


async def test_bad_products_are_refused_in_the_one_error_shape(client: Client) -> None:
    body = {"sku": "bad sku!", "name": "", "priceCents": -1, "available": 1, "extra": 1}
    response = await client.http.post("/products", json=body, headers=admin())
    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["details"]}
    assert fields == {"sku", "name", "priceCents", "extra"}
    assert (await client.http.get("/products/nope")).status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "a\u0000b"),
        ("name", "a\r\nb"),
        ("name", "   "),
        ("name", "\u200b\u200b"),  # zero-width spaces only
        ("name", "\u202egum"),  # a bidi override: shows as "mug"
        ("name", "mug\uffff"),  # a noncharacter
        ("priceCents", True),
        ("priceCents", "5"),
        ("priceCents", 0),
        ("priceCents", 2**64),
        ("available", True),
        ("available", "5"),
    ],
)
async def test_a_product_outside_the_rules_is_refused_and_not_stored(
    client: Client, field: str, value: Any
) -> None:
    body = {"sku": "mug-1", "name": "Mug", "priceCents": 1250, "available": 7} | {field: value}
    response = await client.http.post("/products", json=body, headers=admin())
    assert response.status_code == 400
    assert [d["field"] for d in response.json()["details"]] == [field]
    assert (await client.http.get("/products/mug-1")).status_code == 404


async def test_a_product_name_is_trimmed_and_composed(client: Client) -> None:
    body = {"sku": "cafe", "name": "  Cafe\u0301 au lait ", "priceCents": 250}
    response = await client.http.post("/products", json=body, headers=admin())
    assert response.status_code == 201
    assert response.json()["name"] == "Caf\u00e9 au lait"


@pytest.mark.parametrize("quantity", [True, "4", 0])
async def test_a_restock_of_anything_but_a_positive_number_is_refused(
    client: Client, quantity: Any
) -> None:
    await stock(a=1)
    one = await client.http.post(
        "/products/a/restock", json={"quantity": quantity}, headers=admin()
    )
    bulk = {"items": [{"sku": "a", "quantity": quantity}]}
    many = await client.http.post("/products/restock", json=bulk, headers=admin())
    assert (one.status_code, many.status_code) == (400, 400)
    assert await levels("a") == (1, 0, 0)


async def test_products_are_listed_a_page_at_a_time(client: Client) -> None:
    await stock(a=1, b=2, c=3)
    first = (await client.http.get("/products", params={"limit": 2})).json()
    assert [p["sku"] for p in first] == ["a", "b"]
    rest = (await client.http.get("/products", params={"limit": 2, "after": "b"})).json()
    assert [p["sku"] for p in rest] == ["c"]


async def test_one_product_is_restocked(client: Client) -> None:
    await stock(a=1)
    body = {"quantity": 4}
    response = await client.http.post("/products/a/restock", json=body, headers=admin())
    assert response.status_code == 200
    assert response.json()["available"] == 5
    missing = await client.http.post("/products/zz/restock", json=body, headers=admin())
    assert missing.status_code == 404


async def test_bulk_restock_reports_which_items_failed_and_why(client: Client) -> None:
    await stock(a=1, b=2, c=0)
    items = [
        {"sku": "a", "quantity": 10},
        {"sku": "missing", "quantity": 1},
        {"sku": "b", "quantity": 999_999_999},
        {"sku": "c", "quantity": 3},
    ]
    response = await client.http.post("/products/restock", json={"items": items}, headers=admin())
    assert response.status_code == 207
    report = response.json()
    assert (report["restocked"], report["failed"]) == (2, 2)
    results = {r["sku"]: r for r in report["results"]}
    assert results["a"]["product"]["available"] == 11
    assert results["c"]["product"]["available"] == 3
    assert (results["missing"]["status"], results["missing"]["error"]) == (404, "No such product")
    assert results["b"]["status"] == 409 and "exceed" in results["b"]["error"]
    assert await levels("b") == (2, 0, 0)


async def test_bulk_restock_of_only_good_items_is_200(client: Client) -> None:
    await stock(**{f"s{i}": 0 for i in range(30)})
    items = [{"sku": f"s{i}", "quantity": i + 1} for i in range(30)]
    response = await client.http.post("/products/restock", json={"items": items}, headers=admin())
    assert response.status_code == 200
    assert response.json()["restocked"] == 30
    assert [await levels(f"s{i}") for i in (0, 29)] == [(1, 0, 0), (30, 0, 0)]


async def test_bulk_restock_refuses_a_sku_twice(client: Client) -> None:
    items = [{"sku": "a", "quantity": 1}, {"sku": "a", "quantity": 2}]
    response = await client.http.post("/products/restock", json={"items": items}, headers=admin())
    assert response.status_code == 400


# --- reservations -----------------------------------------------------------------------


async def test_an_order_in_stock_is_reserved_whole(client: Client) -> None:
    await stock(a=5, b=5)
    answer = await client.send(created("ord_1", ("a", 2), ("b", 3), token="tok_x"))
    assert answer.status == 200
    reply = answer.reply
    assert reply is not None and reply.get_type() == InventoryReserved.event_type
    assert reply.get_id() == "ord_1:kshop.inventory.reserved"
    assert reply.get_data() == {
        "orderId": "ord_1",
        "userId": "alice",
        "totalCents": 1250,
        "currency": "EUR",
        "paymentToken": "tok_x",
    }
    assert [await levels("a"), await levels("b")] == [(3, 2, 0), (2, 3, 0)]


def order_data(*lines: tuple[str, Any], **fields: Any) -> dict[str, Any]:
    """An order.created's data as JSON, with lines and fields no model would build."""
    data: dict[str, Any] = created("ord_1", ("a", 1)).model_dump(mode="json", by_alias=True)
    items = [{"sku": s, "name": s, "quantity": q, "unitPriceCents": 250} for s, q in lines]
    return data | {"items": items} | fields


@pytest.mark.parametrize(
    ("data", "field"),
    [
        # One hold per SKU and order: the second line would be skipped, its price charged.
        (order_data(("a", 1), ("a", 5), totalCents=1500), "items"),
        (order_data(("a", 2**64), totalCents=250 * 2**64), "items.0.quantity"),
        (order_data(("a", 0), totalCents=0), "items.0.quantity"),
        (order_data(("a", True), totalCents=250), "items.0.quantity"),
        (order_data(("a", "1"), totalCents=250), "items.0.quantity"),
        (order_data(("a", 1), totalCents=1), "data"),  # not what the lines add up to
        (order_data(("a", 1), currency=""), "currency"),
        (order_data(("a", 1), paymentToken=""), "paymentToken"),
    ],
)
async def test_an_order_outside_the_rules_is_refused_and_holds_nothing(
    client: Client, data: dict[str, Any], field: str
) -> None:
    await stock(a=10)
    answer = await client.send(cloudevent(data, type=OrderCreated.event_type))
    assert answer.status == 400
    assert field in {d["field"] for d in answer.json()["details"]}
    assert await levels("a") == (10, 0, 0)
    assert await reservations().find_one({"_id": "ord_1"}) is None


async def test_the_same_order_twice_reserves_once_and_answers_the_same(client: Client) -> None:
    await stock(a=5)
    first = await client.send(created("ord_1", ("a", 2)))
    second = await client.send(created("ord_1", ("a", 2)))  # another ce-id, the same order
    assert first.reply is not None and second.reply is not None
    assert first.reply.get_id() == second.reply.get_id()
    assert await levels("a") == (3, 2, 0)


async def test_a_short_item_rejects_the_whole_order_and_undoes_the_rest(client: Client) -> None:
    await stock(a=5, b=1, c=0)
    answer = await client.send(created("ord_1", ("a", 2), ("b", 2), ("c", 1)))
    reply = answer.reply
    assert reply is not None and reply.get_type() == InventoryRejected.event_type
    assert answer.data["shortSkus"] == ["b", "c"]
    assert [await levels(s) for s in "abc"] == [(5, 0, 0), (1, 0, 0), (0, 0, 0)]


async def test_an_unknown_sku_is_short(client: Client) -> None:
    answer = await client.send(created("ord_1", ("ghost", 1)))
    assert answer.data["shortSkus"] == ["ghost"]


async def test_concurrent_orders_never_oversell(client: Client) -> None:
    await stock(a=20)
    answers = await asyncio.gather(*(client.send(created(f"ord_{i}", ("a", 1))) for i in range(50)))
    types = [a.reply.get_type() for a in answers if a.reply is not None]
    assert types.count(InventoryReserved.event_type) == 20
    assert types.count(InventoryRejected.event_type) == 30
    assert await levels("a") == (0, 20, 0)


@pytest.mark.parametrize("compensation", ["payment.failed", "order.cancelled"])
async def test_a_compensation_releases_once(client: Client, compensation: str) -> None:
    await stock(a=5)
    await client.send(created("ord_1", ("a", 2)))
    failed = PaymentFailed(order_id="ord_1", user_id="alice", code="card_declined")
    first = failed if compensation == "payment.failed" else cancelled("ord_1")
    answer = await client.send(first)
    assert answer.reply is not None and answer.reply.get_type() == InventoryReleased.event_type
    assert await levels("a") == (5, 0, 0)
    # Both compensations arrive for a declined order; the second finds nothing held.
    again = await client.send(cancelled("ord_1") if first is failed else failed)
    assert again.reply is not None and again.reply.get_id() == answer.reply.get_id()
    assert await levels("a") == (5, 0, 0)


async def test_a_cancel_before_the_order_leaves_a_tombstone(client: Client) -> None:
    await stock(a=5)
    answer = await client.send(cancelled("ord_1"))
    assert (answer.status, answer.body) == (202, b"")
    late = await client.send(created("ord_1", ("a", 2)))
    assert (late.status, late.body) == (202, b"")
    assert await levels("a") == (5, 0, 0)
    assert (await reservations().find_one({"_id": "ord_1"}) or {})["status"] == "tombstone"


async def test_a_cancel_during_the_reservation_is_honoured_by_it(client: Client) -> None:
    await stock(a=5)
    await reservations().insert_one(
        {"_id": "ord_1", "userId": "alice", "status": "reserving", "items": []}
    )
    marked = await client.send(cancelled("ord_1"))
    assert (marked.status, marked.body) == (202, b"")
    # The reservation resumes (a redelivery after a crash) and gives back what it took.
    await reservations().update_one(
        {"_id": "ord_1"}, {"$set": {"items": [{"sku": "a", "quantity": 2}]}}
    )
    resumed = await client.send(created("ord_1", ("a", 2)))
    assert resumed.reply is not None and resumed.reply.get_type() == InventoryReleased.event_type
    assert await levels("a") == (5, 0, 0)


async def test_a_shipment_turns_reserved_into_shipped_once(client: Client) -> None:
    await stock(a=5)
    await client.send(created("ord_1", ("a", 2)))
    for _ in range(2):
        answer = await client.send(shipment("ord_1"))
        assert answer.status == 202
    assert await levels("a") == (3, 0, 2)


async def test_a_shipment_before_its_reservation_is_retried(client: Client) -> None:
    assert (await client.send(shipment("ord_1"))).status == 409


async def test_a_shipment_of_released_stock_is_refused_into_the_dead_letters(
    client: Client,
) -> None:
    await stock(a=5)
    await client.send(created("ord_1", ("a", 2)))
    await client.send(cancelled("ord_1"))
    answer = await client.send(shipment("ord_1"))
    assert answer.status == 400
    assert await levels("a") == (5, 0, 0)
