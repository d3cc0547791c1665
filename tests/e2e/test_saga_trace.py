"""One order is ONE trace: every span from POST /orders to order.completed shares its id.

Every function of the saga and the broker run as processes of their own, as
`kshop dev` starts them, with real HTTP between them. Each function exports its
spans over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT, in batches) to a collector
that this test runs on a thread of its own; the collector decodes the protobuf
export requests, so the spans checked are exactly those the processes sent.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from functions import topology
from functions.dev.mailbox import Mail, read_mail
from functions.runtime import clients
from functions.users import store as users
from functions.users.model import NewUser
from tests.fixtures.services import ServiceEnv
from tests.support.kshop_dev import Dev, start_dev, stop_dev, user_env
from tests.support.otlp import Collector, Span
from tests.support.saga_stack import eventually
from tests.support.shop import ADMIN, SECRET, bearer, configure_auth

pytestmark = pytest.mark.e2e

NAMES = ("orders", "inventory", "payments", "shipping", "notifications", "analytics")

# A span as the trace shows it: its name and its process's service.name.
Node = tuple[str, str]
Edge = tuple[Node, Node]


def consumers(event: str, parent: Node, *functions: str) -> list[Edge]:
    """Each function's span for one event, a child of the span that sent the event."""
    return [((f"kshop.{event} process", f"kshop-{name}"), parent) for name in functions]


# The order's trace, child -> parent. An event's consumers are children of the span
# that sent it: the outbox's publish span, or the consumer whose reply the event was.
# Each edge is one event handled by one function (or one request, or one publish).
ROOT = ("POST /orders", "kshop-orders")
CREATED = ("kshop.order.created publish", "kshop-orders")
RESERVED = ("kshop.order.created process", "kshop-inventory")
PAID = ("kshop.inventory.reserved process", "kshop-payments")
SHIPPED = ("kshop.payment.succeeded process", "kshop-shipping")
COMPLETING = ("kshop.shipment.created process", "kshop-orders")
COMPLETED = ("kshop.order.completed publish", "kshop-orders")
SAGA = ("order.created", "inventory.reserved", "payment.succeeded", "shipment.created")
EDGES = frozenset(
    {
        (CREATED, ROOT),
        *consumers("order.created", CREATED, "inventory", "analytics"),
        *consumers("inventory.reserved", RESERVED, "payments", "orders", "analytics"),
        *consumers("payment.succeeded", PAID, "orders", "shipping", "analytics"),
        *consumers("shipment.created", SHIPPED, "orders", "inventory", "analytics"),
        (COMPLETED, COMPLETING),
        *consumers("order.completed", COMPLETED, "notifications", "analytics"),
        # Analytics' database is new, so each type's first count is a milestone: an
        # event it sends on from that count's span, and receives itself.
        *[
            (
                ("kshop.analytics.milestone.reached process", "kshop-analytics"),
                (f"kshop.{event} process", "kshop-analytics"),
            )
            for event in (*SAGA, "order.completed")
        ],
    }
)
# What one order makes, each once: the request, and every edge's child.
EXPECTED = Counter([ROOT, *(child for child, _ in EDGES)])
# The test's own requests, each a trace of one span: not the order's work.
OWN = {
    ("POST /products", "kshop-inventory", "SERVER", ""),
    ("GET /orders/{order_id}", "kshop-orders", "SERVER", ""),
}


@dataclass
class Shop:
    dev: Dev
    collector: Collector

    def url(self, function: str) -> str:
        return str(self.dev.endpoints["functions"][function])

    def mails(self) -> list[Mail]:
        return read_mail(Path(self.dev.endpoints["mail"]))

    async def stop(self) -> None:
        """Ctrl-C: each function shuts down, and flushes the spans it still holds."""
        await asyncio.to_thread(stop_dev, self.dev)


@pytest.fixture
async def shop(
    service_env: ServiceEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Shop]:
    """`kshop dev` running the saga, every process exporting its spans to one collector."""
    configure_auth(monkeypatch)
    # No PingSource: its ticks would be traces of their own.
    values = yaml.safe_load(topology.DEFAULT_VALUES.read_text())
    values["pingSources"] = []
    quiet = tmp_path / "values.yaml"
    quiet.write_text(yaml.safe_dump(values))
    with Collector() as collector:
        # service_env's MONGODB_DATABASE and REDIS_PREFIX go through from this process's
        # environment, so the customer the test writes is where the functions look.
        env = {k: v for k, v in user_env().items() if not k.startswith("OTEL_")} | {
            "REDIS_URL": service_env.redis_url,
            "MONGODB_URL": service_env.mongodb_url,
            "JWT_SECRET": SECRET,
            "KSHOP_TOPOLOGY": str(quiet),
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "LOG_LEVEL": "WARNING",
        }
        dev = await asyncio.to_thread(start_dev, tmp_path / "shop", env, "--only", ",".join(NAMES))
        shop = Shop(dev, collector)
        try:
            yield shop
        finally:
            await shop.stop()
            await clients.close()


async def test_one_order_makes_one_trace(shop: Shop) -> None:
    user = await users.create(NewUser(name="Flo", email="flo@example.com"))
    async with httpx.AsyncClient(timeout=10) as http:
        product = {"sku": "book", "name": "Book", "priceCents": 1500, "available": 3}
        stocked = await http.post(
            f"{shop.url('inventory')}/products", json=product, headers=bearer("admin", *ADMIN)
        )
        assert stocked.status_code == 201, stocked.text
        body = {"items": [{"sku": "book", "quantity": 1}], "paymentToken": "tok_visa"}
        placed = await http.post(
            f"{shop.url('orders')}/orders", json=body, headers=bearer(user.id, "orders:create")
        )
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]

        async def completed() -> bool:
            order = await http.get(
                f"{shop.url('orders')}/orders/{order_id}", headers=bearer("admin", *ADMIN)
            )
            assert order.status_code == 200, order.text
            return bool(order.json()["status"] == "COMPLETED")

        await eventually(completed, within=30, what="completion")

    # Every span of the order's work, whatever trace it is in. The processes send
    # spans in batches, so the last ones arrive a moment after the work is done.
    async def exported() -> bool:
        done = handled(shop.collector.spans())
        return Counter((name, service) for name, service, _ in done) >= EXPECTED

    await eventually(exported, within=30, what="every span of the order exported")
    mails = shop.mails()
    # Stopping the stack flushes every span still held: from here nothing more comes.
    await shop.stop()
    spans = shop.collector.spans()

    assert [(m["to"], m["subject"]) for m in mails] == [
        (["flo@example.com"], f"Your kshop order {order_id} is on its way")
    ]
    assert len({s.span_id for s in spans}) == len(spans), "a span was exported twice"
    (root,) = [s for s in spans if s.name == "POST /orders"]
    assert (root.service, root.kind, root.parent_span_id) == ("kshop-orders", "SERVER", "")

    # One trace: only the test's own requests are outside it, each a trace of its own.
    others = [s for s in spans if s.trace_id != root.trace_id]
    outside = {(s.name, s.service, s.kind, s.parent_span_id) for s in others}
    assert outside == OWN, "spans outside the order's trace (name, service, kind, parent)"
    assert set(Counter(s.trace_id for s in others).values()) == {1}
    trace = [s for s in spans if s.trace_id == root.trace_id]
    assert {s.service for s in trace} == {f"kshop-{name}" for name in NAMES}

    # Parent/child links: every span's parent is in the trace, and is the span that
    # caused it, so the links lead from any span back to POST /orders.
    by_id = {s.span_id: s for s in trace}
    orphans = [s for s in trace if s is not root and s.parent_span_id not in by_id]
    assert orphans == []
    edges = {_edge(s, by_id[s.parent_span_id]) for s in trace if s is not root}
    assert edges == EDGES
    kinds = {(s.name.rsplit(" ", 1)[1], s.kind) for s in trace if s is not root}
    assert kinds == {("process", "CONSUMER"), ("publish", "PRODUCER")}

    # Each function handled each of the order's events once, however many deliveries
    # it took, and each event type is one event that all its subscribers got.
    done = handled(trace)
    assert Counter((name, service) for name, service, _ in done) == EXPECTED
    ids: dict[str, set[object]] = {}
    for name, _, event_id in done:
        if name.endswith(" process"):
            ids.setdefault(name, set()).add(event_id)
    assert None not in set().union(*ids.values())
    assert {name: len(events) for name, events in ids.items()} == {
        **{f"kshop.{event} process": 1 for event in (*SAGA, "order.completed")},
        "kshop.analytics.milestone.reached process": 5,
    }
    processed = Counter(
        name for name, _, _ in done if name.endswith(" process") and "milestone" not in name
    )
    assert processed == {
        "kshop.order.created process": 2,  # inventory, analytics
        "kshop.inventory.reserved process": 3,  # payments, orders, analytics
        "kshop.payment.succeeded process": 3,  # orders, shipping, analytics
        "kshop.shipment.created process": 3,  # orders, inventory, analytics
        "kshop.order.completed process": 2,  # notifications, analytics
    }
    published = {s.name for s in trace if s.name.endswith(" publish")}
    assert published == {"kshop.order.created publish", "kshop.order.completed publish"}


def handled(spans: list[Span]) -> set[tuple[str, str, object]]:
    """Each span as what it did: its name, its service and the event it handled.

    Knative delivers at least once: a delivery that failed or timed out is sent
    again, and each attempt is a span of its own; the event, and its id, is the same.
    """
    return {(s.name, s.service, s.attributes.get("cloudevents.event_id")) for s in spans}


def _edge(child: Span, parent: Span) -> Edge:
    return (child.name, child.service), (parent.name, parent.service)
