"""notifications against a real SMTP server (aiosmtpd) and Redis."""

import asyncio
import email
from collections.abc import AsyncIterator, Iterator
from email import policy

import pytest
from aiosmtpd.controller import Controller

from functions.dev.services import HOST, SmtpServer, free_port
from functions.notifications import mail
from functions.notifications import main as notifications
from functions.runtime import TooManyRequests
from functions.runtime.settings import settings
from functions.runtime.testing import Client, cloudevent, running
from functions.users.events import UserCreated
from tests.fixtures.services import ServiceEnv

pytestmark = pytest.mark.integration

ADA = UserCreated(id="01a2224b-fa38-72d6-a164-842a52c8b669", name="Ada", email="ada@example.com")


@pytest.fixture
async def client(service_env: ServiceEnv, smtp_server: SmtpServer) -> AsyncIterator[Client]:
    settings.cache_clear()
    async with running(notifications.function) as client:
        yield client


def point_smtp_at(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv("SMTP_PORT", str(port))
    settings.cache_clear()


def message_id(raw: str) -> str:
    return str(email.message_from_string(raw, policy=policy.default)["Message-ID"])


async def test_a_new_user_gets_a_welcome_email_in_text_and_html(
    client: Client, smtp_server: SmtpServer
) -> None:
    answer = await client.send(ADA)
    assert answer.status == 202
    assert answer.body == b""
    [sent] = smtp_server.messages()
    assert sent["to"] == ["ada@example.com"]
    assert sent["from"] == "no-reply@kshop.example"
    assert sent["subject"] == "Welcome to kshop, Ada"
    assert sent["text"] is not None and "Hello Ada," in sent["text"]
    assert sent["html"] is not None and "<p>Hello Ada,</p>" in sent["html"]


async def test_the_name_is_html_escaped(client: Client, smtp_server: SmtpServer) -> None:
    name = '<script>alert("x")</script> & <b>Bob</b>'
    await client.send(UserCreated(id="u-escape", name=name, email="bob@example.com"))
    [sent] = smtp_server.messages()
    assert sent["html"] is not None and sent["text"] is not None
    assert "<script>" not in sent["html"] and "<b>" not in sent["html"]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;Bob" in sent["html"]
    assert name in sent["text"]  # plain text needs no escaping


async def test_a_unicode_name_and_address_arrive_intact(
    client: Client, smtp_server: SmtpServer
) -> None:
    await client.send(UserCreated(id="u-zoe", name="Zoë Ångström 李", email="zoe@exämple.com"))
    [sent] = smtp_server.messages()
    assert sent["subject"] == "Welcome to kshop, Zoë Ångström 李"
    assert sent["to"] == ["zoe@exämple.com"]


async def test_a_duplicate_delivery_sends_one_email(
    client: Client, smtp_server: SmtpServer
) -> None:
    event = cloudevent(ADA)
    first = await client.send(event)
    second = await client.send(event, structured=True)
    assert first.status == second.status == 202
    assert len(smtp_server.messages()) == 1


async def test_another_event_about_the_same_user_sends_no_second_email(
    client: Client, smtp_server: SmtpServer
) -> None:
    # A replay from the dead-letter store long after the idempotency record expired,
    # or a second producer: a new event id, the same welcome.
    assert (await client.send(ADA, id="first")).status == 202
    assert (await client.send(ADA, id="second", source="/kshop/replay")).status == 202
    assert len(smtp_server.messages()) == 1


async def test_smtp_down_is_503_and_the_retry_sends_once(
    client: Client, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = cloudevent(ADA)
    point_smtp_at(monkeypatch, free_port())
    answer = await client.send(event)
    assert answer.status == 503
    assert answer.json()["error"].startswith("SMTP failed")
    point_smtp_at(monkeypatch, smtp_server.port)
    assert (await client.send(event)).status == 202  # the broker's retry
    assert (await client.send(event)).status == 202  # and a duplicate of it
    assert len(smtp_server.messages()) == 1


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP server that accepts and never says a word: an SMTP server that hangs."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hang, HOST, 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_a_hanging_smtp_server_times_out_as_503(
    client: Client, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_TIMEOUT", "0.3")
    point_smtp_at(monkeypatch, silent_port)
    async with asyncio.timeout(5):
        answer = await client.send(ADA)
    assert answer.status == 503


class RefuseEveryone:
    async def handle_RCPT(self, *args: object) -> str:
        return "550 5.1.1 No such user here"


@pytest.fixture
def refusing_port() -> Iterator[int]:
    controller = Controller(
        RefuseEveryone(), hostname=HOST, port=free_port(), server_hostname="localhost"
    )
    controller.start()
    yield controller.port
    controller.stop()


async def test_a_recipient_refused_for_good_is_400_so_it_is_not_retried(
    client: Client, refusing_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_smtp_at(monkeypatch, refusing_port)
    answer = await client.send(ADA)
    assert answer.status == 400
    assert "550" in answer.json()["details"][0]


async def test_an_address_that_is_not_one_is_400(client: Client) -> None:
    answer = await client.send(UserCreated(id="u-bad", name="Eve", email="eve@@example"))
    assert answer.status == 400


async def test_the_message_id_is_fixed_by_the_key(client: Client, smtp_server: SmtpServer) -> None:
    await client.send(ADA)
    await client.send(UserCreated(id="u-grace", name="Grace", email="grace@example.com"))
    first, second = (message_id(m["raw"]) for m in smtp_server.messages())
    assert first.endswith("@kshop.example>") and first != second
    again = mail.message("welcome", ADA.email, {"name": ADA.name}, key=ADA.id)
    assert again["Message-ID"] == first  # a copy sent after a crash is recognisably the same


async def test_order_emails_are_ready_for_the_saga(client: Client, smtp_server: SmtpServer) -> None:
    completed = {"order_id": "ord_1", "total": "€12.50"}
    assert await mail.send("order_completed", "ada@example.com", completed, key="ord_1")
    assert not await mail.send("order_completed", "ada@example.com", completed, key="ord_1")
    cancelled = {"order_id": "ord_2", "reason": "payment <declined>"}
    assert await mail.send("order_cancelled", "ada@example.com", cancelled, key="ord_2")
    done, gone = smtp_server.messages()
    assert done["subject"] == "Your kshop order ord_1 is on its way"
    assert done["text"] is not None and "€12.50" in done["text"]
    assert gone["html"] is not None and "payment &lt;declined&gt;" in gone["html"]


async def test_while_one_send_runs_another_for_the_same_key_gets_429(
    client: Client, smtp_server: SmtpServer
) -> None:
    await mail.marks.set("welcome:busy", mail.Mark(status="sending"))
    with pytest.raises(TooManyRequests):
        await mail.send("welcome", "ada@example.com", {"name": "Ada"}, key="busy")
    assert smtp_server.messages() == []
