"""A function whose handlers exercise every path of the runtime, for its tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from pydantic import Field

from functions.runtime import Conflict, Event, EventData, Function, TooManyRequests

function = Function("sample", uses={"redis"}, api="tests.support.sample_api:router")

# How often each handler body really ran, by event id: what idempotency must keep at 1.
runs: Counter[str] = Counter()


class Ping(EventData, type="kshop.sample.pinged"):
    message: str = Field(min_length=1, max_length=100)
    times: int = Field(default=1, ge=1, le=10)


class Pong(EventData, type="kshop.sample.ponged"):
    message: str


class Slow(EventData, type="kshop.sample.slowed"):
    seconds: float = Field(ge=0, le=30)


class Failing(EventData, type="kshop.sample.failed"):
    failures: int = Field(ge=0, description="how many deliveries fail before one succeeds")
    error: str = "boom"


@function.on(Ping)
async def ping(event: Event[Ping]) -> CloudEvent:
    runs[event.id] += 1
    return function.event(Pong(message=event.data.message * event.data.times))


@function.on("kshop.sample.noted")
async def note(event: Event[Any]) -> None:
    runs[event.id] += 1


@function.on(Slow)
async def slow(event: Event[Slow]) -> None:
    runs[event.id] += 1
    await asyncio.sleep(event.data.seconds)


@function.on(Failing)
async def failing(event: Event[Failing]) -> None:
    runs[event.id] += 1
    if runs[event.id] <= event.data.failures:
        if event.data.error == "conflict":
            raise Conflict("The order is not ready yet")
        if event.data.error == "busy":
            raise TooManyRequests("Slow down", retry_after=3)
        raise RuntimeError("boom")


@function.on("kshop.sample.published", idempotent=False)
async def publish(event: Event[Any]) -> None:
    runs[event.id] += 1
    await function.publish(Pong(message=str(event.data)), subject=event.id)
