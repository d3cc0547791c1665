"""The payment gateway: an interface, and a simulated gateway that behaves like a real one.

Calls are idempotent per key (the order id), as with real gateways' idempotency
keys: a retried charge returns the first charge, so an order is charged once
however often payments retries. Card data never reaches kshop; the customer's
card is a gateway token.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import uuid_utils
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from functions.runtime import clients
from functions.runtime.settings import settings

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection


class GatewayUnavailable(Exception):
    """A transient failure: the call may or may not have taken effect; retry with the same key."""


@dataclass(frozen=True, slots=True)
class Charge:
    id: str
    key: str
    amount_cents: int
    currency: str
    approved: bool
    decline_code: str | None = None
    refund_id: str | None = None


class Gateway(Protocol):
    async def charge(self, key: str, amount_cents: int, currency: str, token: str) -> Charge:
        """Charge once per key: a repeated call returns the first charge."""

    async def find(self, key: str) -> Charge | None:
        """The charge made under key, if any."""

    async def refund(self, key: str) -> Charge:
        """Pay back the approved charge of key in full, once; the charge with its refund."""


def decline_code(token: str, amount_cents: int, limit_cents: int) -> str | None:
    """Why the simulated gateway declines, deterministically; None when it approves."""
    if token.startswith("tok_decline"):
        return "card_declined"
    if token.startswith("tok_insufficient"):
        return "insufficient_funds"
    if amount_cents > limit_cents:
        return "amount_too_large"
    return None


class SimulatedGateway:
    """A gateway whose books are a MongoDB collection, so they outlive payments' processes.

    A charge takes `latency` seconds. Any call fails at `failure_rate`; half the
    failures strike after the call took effect, as a timeout on a real network does.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        failure_rate: float = 0.0,
        decline_above_cents: int = 1_000_000,
        rng: random.Random | None = None,
    ) -> None:
        self.latency = latency
        self.failure_rate = failure_rate
        self.decline_above_cents = decline_above_cents
        self.rng = rng or random.Random()

    @staticmethod
    def books() -> AsyncCollection[dict[str, Any]]:
        return clients.mongo()["simulated_gateway"]

    @contextlib.asynccontextmanager
    async def _weather(self) -> AsyncIterator[None]:
        """One call's luck, drawn once: it fails before taking effect, after, or not at all."""
        draw = self.rng.random()
        if draw < self.failure_rate / 2:
            raise GatewayUnavailable("the simulated gateway is unavailable")
        yield
        if draw < self.failure_rate:
            raise GatewayUnavailable("the simulated gateway timed out after the call")

    async def charge(self, key: str, amount_cents: int, currency: str, token: str) -> Charge:
        async with self._weather():
            # Authorising a card is the slow call; lookups and refunds are not.
            await asyncio.sleep(self.latency)
            code = decline_code(token, amount_cents, self.decline_above_cents)
            entry = {
                "_id": key,
                "chargeId": f"ch_{uuid_utils.uuid7().hex}",
                "amountCents": amount_cents,
                "currency": currency,
                "approved": code is None,
                "declineCode": code,
                "refundId": None,
                "createdAt": datetime.now(UTC),
            }
            try:
                await self.books().insert_one(entry)
            except DuplicateKeyError:
                entry = await self.books().find_one({"_id": key}) or entry
        return _charge(entry)

    async def find(self, key: str) -> Charge | None:
        async with self._weather():
            entry = await self.books().find_one({"_id": key})
        return _charge(entry) if entry else None

    async def refund(self, key: str) -> Charge:
        async with self._weather():
            entry = await self.books().find_one_and_update(
                {"_id": key, "approved": True, "refundId": None},
                {
                    "$set": {
                        "refundId": f"re_{uuid_utils.uuid7().hex}",
                        "refundedAt": datetime.now(UTC),
                    }
                },
                return_document=ReturnDocument.AFTER,
            ) or await self.books().find_one({"_id": key, "approved": True})
        if entry is None:
            raise ValueError(f"no approved charge under {key!r} to refund")
        return _charge(entry)


def _charge(entry: dict[str, Any]) -> Charge:
    return Charge(
        id=entry["chargeId"],
        key=entry["_id"],
        amount_cents=entry["amountCents"],
        currency=entry["currency"],
        approved=entry["approved"],
        decline_code=entry["declineCode"],
        refund_id=entry["refundId"],
    )


def gateway() -> Gateway:
    """The configured gateway (PAYMENT_GATEWAY); only the simulated one is built in."""
    config = settings()
    return SimulatedGateway(
        latency=config.payment_gateway_latency,
        failure_rate=config.payment_gateway_failure_rate,
        decline_above_cents=config.payment_decline_above_cents,
    )
