"""The service fixtures give real servers, and those servers do what kshop relies on."""

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
import redis.asyncio
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from functions.dev.services import (
    HOST,
    MongoServer,
    ProcessServer,
    RedisServer,
    ServiceError,
    SmtpServer,
)
from functions.runtime.settings import settings
from tests.fixtures.services import ServiceEnv

pytestmark = pytest.mark.integration

Doc = dict[str, object]


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) != 0


async def test_service_env_is_in_the_environment(service_env: ServiceEnv) -> None:
    assert os.environ["MONGODB_URL"] == service_env.mongodb_url
    assert os.environ["MONGODB_DATABASE"] == service_env.mongodb_database
    assert os.environ["REDIS_URL"] == service_env.redis_url
    assert os.environ["REDIS_PREFIX"] == service_env.redis_prefix


async def test_redis_set_get(service_env: ServiceEnv) -> None:
    client = redis.asyncio.Redis.from_url(service_env.redis_url)
    try:
        key = f"{service_env.redis_prefix}:greeting"  # under the prefix the fixture cleans up
        await client.set(key, "hello", ex=60)
        assert await client.get(key) == b"hello"
    finally:
        await client.aclose()


@pytest.fixture
async def mongo(service_env: ServiceEnv) -> AsyncIterator[AsyncMongoClient[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(service_env.mongodb_url, timeoutMS=10_000)
    yield client
    await client.close()


async def test_mongodb_insert_find(mongo: AsyncMongoClient[Doc], service_env: ServiceEnv) -> None:
    orders = mongo[service_env.mongodb_database].orders
    await orders.insert_one({"_id": "o1", "status": "PENDING", "total": 1250})
    assert await orders.find_one({"_id": "o1"}) == {"_id": "o1", "status": "PENDING", "total": 1250}


async def test_mongodb_unique_index(mongo: AsyncMongoClient[Doc], service_env: ServiceEnv) -> None:
    users = mongo[service_env.mongodb_database].users
    await users.create_index("email", unique=True)
    await users.insert_one({"email": "ada@example.com"})
    with pytest.raises(DuplicateKeyError):
        await users.insert_one({"email": "ada@example.com"})


async def test_mongodb_guarded_update(
    mongo: AsyncMongoClient[Doc], service_env: ServiceEnv
) -> None:
    orders = mongo[service_env.mongodb_database].orders
    await orders.insert_one({"_id": "o1", "status": "PENDING", "version": 1})
    guard = {"_id": "o1", "status": "PENDING"}
    change = {"$set": {"status": "RESERVED"}, "$inc": {"version": 1}}

    after = await orders.find_one_and_update(guard, change, return_document=ReturnDocument.AFTER)
    assert after == {"_id": "o1", "status": "RESERVED", "version": 2}
    # The status guard no longer matches, so a duplicate event changes nothing.
    assert await orders.find_one_and_update(guard, change) is None
    assert await orders.find_one({"_id": "o1"}) == after


async def test_mongodb_stock_guard(mongo: AsyncMongoClient[Doc], service_env: ServiceEnv) -> None:
    stock = mongo[service_env.mongodb_database].stock
    await stock.insert_one({"_id": "sku-1", "available": 3, "reserved": 0})
    guard = {"_id": "sku-1", "available": {"$gte": 2}}
    take_two = {"$inc": {"available": -2, "reserved": 2}}

    assert (await stock.update_one(guard, take_two)).modified_count == 1
    assert (await stock.update_one(guard, take_two)).modified_count == 0
    assert await stock.find_one({"_id": "sku-1"}) == {"_id": "sku-1", "available": 1, "reserved": 2}


async def test_the_runtime_client_makes_status_guards_atomic(service_env: ServiceEnv) -> None:
    """The saga's semantic lock: of many racing guarded updates, exactly one wins.

    Real MongoDB guarantees this per document. FerretDB 1.x checks the guard and
    writes in separate steps (FerretDB/FerretDB#3040), so against it the fixture
    sets MONGODB_MAX_POOL_SIZE=1 and the runtime's client serialises its commands.
    """
    from functions.runtime import clients

    settings.cache_clear()
    orders = clients.mongo().orders
    try:
        winners = []
        for order_id in range(10):
            await orders.insert_one({"_id": order_id, "status": "PENDING"})
            results = await asyncio.gather(
                *(
                    orders.find_one_and_update(
                        {"_id": order_id, "status": "PENDING"}, {"$set": {"status": "RESERVED"}}
                    )
                    for _ in range(16)
                )
            )
            winners.append(sum(r is not None for r in results))
        assert winners == [1] * 10
    finally:
        await clients.close()


async def test_mail_is_kept(smtp_server: SmtpServer) -> None:
    message = EmailMessage()
    message["From"] = "shop@kshop.test"
    message["To"] = "ada@example.com"
    message["Subject"] = "Your order o1"
    message.set_content("Thanks for your order.")
    message.add_alternative("<p>Thanks for your <b>order</b>.</p>", subtype="html")

    await aiosmtplib.send(message, hostname=smtp_server.host, port=smtp_server.port)

    [mail] = smtp_server.messages()
    assert mail["subject"] == "Your order o1"
    assert mail["from"] == "shop@kshop.test"
    assert mail["to"] == ["ada@example.com"]
    assert mail["text"] == "Thanks for your order.\n"
    assert mail["html"] == "<p>Thanks for your <b>order</b>.</p>\n"
    assert "Subject: Your order o1" in mail["raw"]


@pytest.mark.parametrize("server_class", [RedisServer, MongoServer])
def test_stop_ends_the_process(server_class: type[ProcessServer]) -> None:
    server = server_class().start()
    pid = server.pid
    assert pid is not None

    server.stop()

    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert refuses_connections(server.port)


def test_smtp_stop_closes_the_port(tmp_path: Path) -> None:
    with SmtpServer(directory=tmp_path) as server:
        assert not refuses_connections(server.port)
    assert refuses_connections(server.port)


def test_missing_binary_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match=r"redis-server not found.*scripts/bootstrap"):
        RedisServer().start()


def test_start_failure_shows_the_log() -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        with pytest.raises(ServiceError, match=r"(?s)exited with code.*Address already in use"):
            RedisServer(port=busy.getsockname()[1]).start()
