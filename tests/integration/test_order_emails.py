"""Order emails: one per outcome, to the customer's current address, over real SMTP."""

from collections.abc import AsyncIterator

import pytest

from functions.dev.services import SmtpServer
from functions.notifications import main as notifications
from functions.orders.events import OrderCompleted
from functions.runtime.settings import settings
from functions.runtime.testing import Client, running
from functions.users import store as users
from functions.users.model import NewUser
from tests.fixtures.services import ServiceEnv
from tests.support.shop import cancelled

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(service_env: ServiceEnv, smtp_server: SmtpServer) -> AsyncIterator[Client]:
    settings.cache_clear()
    async with running(notifications.function) as client:
        yield client


async def customer() -> str:
    return (await users.create(NewUser(name="Ada", email="ada@example.com"))).id


def completed(order_id: str, user_id: str) -> OrderCompleted:
    return OrderCompleted(
        order_id=order_id,
        user_id=user_id,
        total_cents=1250,
        currency="EUR",
        carrier="kshop-post",
        tracking_number="KP1",
    )


async def test_a_completed_order_is_mailed_once(client: Client, smtp_server: SmtpServer) -> None:
    user_id = await customer()
    for _ in range(2):  # the same outcome announced twice, under two event ids
        assert (await client.send(completed("ord_1", user_id))).status == 202
    [sent] = smtp_server.messages()
    assert sent["to"] == ["ada@example.com"]
    assert sent["subject"] == "Your kshop order ord_1 is on its way"
    assert sent["text"] is not None and "€12.50" in sent["text"]


async def test_a_cancelled_order_is_mailed_with_its_reason(
    client: Client, smtp_server: SmtpServer
) -> None:
    user_id = await customer()
    await client.send(cancelled("ord_1", "payment_declined", user=user_id))
    await client.send(cancelled("ord_1", "payment_declined", user=user_id))
    [sent] = smtp_server.messages()
    assert sent["subject"] == "Your kshop order ord_1 was cancelled"
    assert sent["text"] is not None and "the payment was declined" in sent["text"]


async def test_a_deleted_customer_gets_no_mail(client: Client, smtp_server: SmtpServer) -> None:
    user_id = await customer()
    await users.delete(user_id)
    assert (await client.send(completed("ord_1", user_id))).status == 202
    assert smtp_server.messages() == []
