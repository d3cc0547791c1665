"""One order is ONE trace: every span from POST /orders to order.completed shares its id.

The functions and the broker run in this one process (uvicorn servers on free
ports, real HTTP between them), so a single in-memory exporter sees every span.
"""

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from functions import topology
from functions.dev.broker import Broker
from functions.dev.services import SmtpServer, free_port
from functions.inventory import store as catalogue
from functions.runtime import clients, tracing
from functions.runtime.serve import load
from functions.runtime.settings import settings
from functions.users import store as users
from functions.users.model import NewUser
from tests.fixtures.services import ServiceEnv
from tests.support.saga_stack import eventually
from tests.support.servers import serving
from tests.support.shop import ADMIN, bearer, configure_auth

pytestmark = pytest.mark.e2e

NAMES = ("orders", "inventory", "payments", "shipping", "notifications", "analytics")


@pytest.fixture
async def shop(
    service_env: ServiceEnv,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[dict[str, str]]:
    """Every function of the saga and the broker, served from this process."""
    configure_auth(monkeypatch)
    broker_port = free_port()
    monkeypatch.setenv("K_SINK", f"http://127.0.0.1:{broker_port}/default/default")
    settings.cache_clear()
    async with AsyncExitStack() as stack:
        urls = {}
        for name in NAMES:
            app = load(name).app()
            await app.startup()
            stack.push_async_callback(app.shutdown)
            urls[name] = await stack.enter_async_context(serving(app))
        # No PingSource: its ticks would be traces of their own.
        quiet = topology.load().model_copy(update={"ping_sources": []})
        broker = Broker(quiet, urls, url=f"http://127.0.0.1:{broker_port}")
        await broker.start()
        stack.push_async_callback(broker.stop)
        await stack.enter_async_context(serving(broker.app, port=broker_port))
        yield urls
    await clients.close()


async def test_one_order_makes_one_trace(shop: dict[str, str], smtp_server: SmtpServer) -> None:
    await catalogue.create("book", "Book", 1500, 3)
    user = await users.create(NewUser(name="Flo", email="flo@example.com"))
    exporter = InMemorySpanExporter()
    tracing.provider().add_span_processor(SimpleSpanProcessor(exporter))

    async with httpx.AsyncClient(base_url=shop["orders"]) as http:
        body = {"items": [{"sku": "book", "quantity": 1}], "paymentToken": "tok_visa"}
        placed = await http.post("/orders", json=body, headers=bearer(user.id, "orders:create"))
        assert placed.status_code == 201
        order_id = placed.json()["id"]

        async def completed() -> bool:
            order = await http.get(f"/orders/{order_id}", headers=bearer("admin", *ADMIN))
            return bool(order.json()["status"] == "COMPLETED")

        await eventually(completed, within=20, what="completion")

    def told(count: int) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            names = [s.name for s in exporter.get_finished_spans()]
            return names.count("kshop.order.completed process") >= count

        return probe

    await eventually(told(2), within=10, what="notifications and analytics")
    assert len(smtp_server.messages()) == 1

    # Only the test's own polling of GET /orders is not part of the order's work.
    spans = [s for s in exporter.get_finished_spans() if not s.name.startswith("GET ")]
    (root,) = [s for s in spans if s.name == "POST /orders"]
    assert root.parent is None
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    processed = Counter(
        s.name for s in spans if s.name.endswith(" process") and "milestone" not in s.name
    )
    assert processed == {
        "kshop.order.created process": 2,  # inventory, analytics
        "kshop.inventory.reserved process": 3,  # payments, orders, analytics
        "kshop.payment.succeeded process": 3,  # orders, shipping, analytics
        "kshop.shipment.created process": 3,  # orders, inventory, analytics
        "kshop.order.completed process": 2,  # notifications, analytics
    }
    published = {s.name for s in spans if s.name.endswith(" publish")}
    assert published == {"kshop.order.created publish", "kshop.order.completed publish"}
