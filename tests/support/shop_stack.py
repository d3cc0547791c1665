"""A whole shop for end-to-end tests: its own database, key prefix, mailbox and processes."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from functions.dev.services import SmtpServer, mongodb_env
from functions.orders.machine import TERMINAL
from functions.runtime import clients
from functions.runtime.settings import settings
from functions.users import store as users
from functions.users.model import NewUser
from tests.support.saga_stack import SagaStack, eventually
from tests.support.shop import ADMIN, SECRET, bearer

SAGA = ("orders", "inventory", "payments", "shipping", "notifications", "deadletter")


@dataclass
class Shop:
    stack: SagaStack
    smtp: SmtpServer

    async def customer(self, name: str) -> dict[str, str]:
        """A registered user, and the headers of their bearer token."""
        user = await users.create(NewUser(name=name, email=f"{name.lower()}@example.com"))
        return bearer(user.id, "orders:create")

    async def products(self, price_cents: int = 250, **available: int) -> None:
        for sku, count in available.items():
            body = {"sku": sku, "name": sku, "priceCents": price_cents, "available": count}
            response = await self.stack.http("inventory").post(
                "/products", json=body, headers=bearer("admin", *ADMIN)
            )
            assert response.status_code == 201, response.text

    async def place(
        self, headers: Mapping[str, str], *lines: tuple[str, int], token: str = "tok_visa"
    ) -> str:
        body = {"items": [{"sku": s, "quantity": q} for s, q in lines], "paymentToken": token}
        response = await self.stack.http("orders").post("/orders", json=body, headers=headers)
        assert response.status_code == 201, response.text
        order_id: str = response.json()["id"]
        return order_id

    async def order(self, order_id: str) -> dict[str, Any]:
        response = await self.stack.http("orders").get(
            f"/orders/{order_id}", headers=bearer("admin", *ADMIN)
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def settled(self, order_id: str, within: float = 30) -> dict[str, Any]:
        async def terminal() -> dict[str, Any] | None:
            order = await self.order(order_id)
            return order if order["status"] in TERMINAL else None

        found: dict[str, Any] = await eventually(terminal, within=within, what=f"{order_id} ends")
        return found

    def mails_about(self, order_id: str) -> list[str]:
        return [m["subject"] for m in self.smtp.messages() if order_id in m["subject"]]


@contextlib.asynccontextmanager
async def running_shop(
    redis_url: str,
    mongodb_url: str,
    workdir: Path,
    names: Sequence[str] = SAGA,
    overrides: Mapping[str, str] | None = None,
    route: Callable[[str, str], str] | None = None,
) -> AsyncIterator[Shop]:
    """The shop's functions with the broker, and this process pointed at the same stores."""
    token = uuid.uuid4().hex[:12]
    env = {
        "MONGODB_URL": mongodb_url,
        **mongodb_env(mongodb_url),
        "MONGODB_DATABASE": f"e2e_{token}",
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"e2e:{token}:",
        "JWT_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
        **(overrides or {}),
    }
    with pytest.MonkeyPatch.context() as patch, SmtpServer(workdir / "mail") as smtp:
        env |= {"SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port)}
        for key, value in env.items():
            patch.setenv(key, value)
        settings.cache_clear()
        try:
            async with SagaStack(env, names, workdir, route=route) as stack:
                yield Shop(stack, smtp)
        finally:
            await clients.close()
            async with AsyncMongoClient[dict[str, Any]](mongodb_url) as mongo:
                await mongo.drop_database(env["MONGODB_DATABASE"])
            async with aioredis.from_url(redis_url) as client:
                keys = [k async for k in client.scan_iter(match=f"{env['REDIS_PREFIX']}*")]
                if keys:
                    await client.delete(*keys)
