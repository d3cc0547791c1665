"""The dev broker on a real port, real subscriber servers, and time that tests control.

`Subscribers` is one HTTP server standing in for every function: function `f` is
reached at `/f/`, and each request is recorded and answered from a script. Both it
and the broker's port are served for the whole session (a uvicorn shutdown takes
0.2 s); `Lab.running` puts each test's own Broker behind the broker's port.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cloudevents.core.base import BaseCloudEvent

from functions.dev.broker import Broker, Outcome, Record
from functions.runtime import codec
from functions.runtime.app import ASGIApp, Receive, Scope, Send, read_body, respond
from functions.runtime.testing import cloudevent
from functions.topology import AttributesFilter, Delivery, Function, PingSource, Topology, Trigger
from functions.topology import Broker as BrokerSpec
from tests.support.servers import Request

DEADLETTER = "deadletter"
# Small, fast and easy to count: 3 attempts, waits of 0.1 s then 0.2 s.
FAST = Delivery(
    retry=2, backoff_policy="exponential", backoff_delay="PT0.1S", dead_letter_function=DEADLETTER
)
START = datetime(2026, 3, 7, 20, 0, tzinfo=UTC)
# Waits this long or longer are cron waits, which FakeTime can ration.
CRON_WAIT = 10.0


@dataclass
class Reply:
    status: int = 202
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def event(cls, event: BaseCloudEvent, status: int = 200, structured: bool = False) -> Reply:
        headers, body = codec.encode(event, structured=structured)
        return cls(status, body, headers)


class Subscribers:
    def __init__(self, url: str) -> None:
        self.url = url
        self.reset()

    def reset(self) -> None:
        self.requests: defaultdict[str, list[Request]] = defaultdict(list)
        self.peak: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._scripts: dict[str, list[Reply]] = {}
        self._defaults: dict[str, Reply] = {}

    def answer(self, function: str, *replies: Reply, then: Reply | None = None) -> None:
        """Answer `function`'s next requests with `replies`, and the ones after with `then`."""
        self._scripts[function] = list(replies)
        if then is not None:
            self._defaults[function] = then

    def endpoints(self, *functions: str) -> dict[str, str]:
        return {name: f"{self.url}/{name}" for name in functions}

    def events(self, function: str) -> list[BaseCloudEvent]:
        return [codec.decode(r.headers, r.body) for r in self.requests[function]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        function = scope["path"].strip("/").split("/")[0]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        body = await read_body(headers, receive, 1 << 24)
        self.requests[function].append(Request(scope["method"], scope["path"], headers, body))
        script = self._scripts.get(function)
        reply = script.pop(0) if script else self._defaults.get(function, Reply())
        self._in_flight[function] += 1
        self.peak[function] = max(self.peak[function], self._in_flight[function])
        try:
            await asyncio.sleep(reply.delay)
        finally:
            self._in_flight[function] -= 1
        await respond(send, reply.status, reply.headers, reply.body)


@dataclass
class FakeTime:
    """The broker's clock and sleep: sleeping only moves the clock, and is recorded."""

    now: datetime = START
    waits: list[float] = field(default_factory=list)
    # How many cron waits may pass; None for no limit. After that, a cron wait never ends.
    cron_waits: int | None = None

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds >= CRON_WAIT and self.cron_waits is not None:
            if self.cron_waits == 0:
                await asyncio.Event().wait()
            self.cron_waits -= 1
        self.waits.append(seconds)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


def event(
    event_id: str = "e1", type: str = "kshop.test.happened", **extensions: Any
) -> BaseCloudEvent:
    return cloudevent({"n": 1}, type=type, id=event_id, extensions=extensions)


def shop(
    functions: Mapping[str, Sequence[Trigger]],
    delivery: Delivery | None = FAST,
    pings: Sequence[PingSource] = (),
) -> Topology:
    """A topology with these functions and their Triggers, plus the dead-letter function."""
    built = {name: Function(triggers=list(triggers)) for name, triggers in functions.items()}
    return Topology(
        broker=BrokerSpec(delivery=delivery),
        functions={DEADLETTER: Function(), **built},
        ping_sources=list(pings),
    )


def on(name: str, event_type: str) -> Trigger:
    """A Trigger on one event type, with the classic filter."""
    return Trigger(name=name, filter=AttributesFilter(attributes={"type": event_type}))


# a takes kshop.a (and may reply kshop.b); b takes kshop.b.
CHAIN = shop({"a": [on("ta", "kshop.a")], "b": [on("tb", "kshop.b")]})


@dataclass
class Running:
    client: httpx.AsyncClient
    records: list[Record]
    time: FakeTime
    recorded: asyncio.Event
    broker: Broker = field(init=False)

    async def send(
        self,
        sent: BaseCloudEvent,
        *,
        structured: bool = False,
        headers: Mapping[str, str] | None = None,
        path: str = "/default/default",
    ) -> httpx.Response:
        wire_headers, body = codec.encode(sent, structured=structured)
        headers = {**wire_headers, **(headers or {})}
        return await self.client.post(path, headers=headers, content=body)

    async def deliver(self, *sent: BaseCloudEvent, structured: bool = False) -> None:
        """Send each event, expect 202, and wait until every delivery has finished."""
        for one in sent:
            response = await self.send(one, structured=structured)
            assert response.status_code == 202, response.text
        await self.broker.drain()

    def outcomes(self, outcome: Outcome) -> list[Record]:
        return [r for r in self.records if r.outcome is outcome]

    async def wait_for(self, outcome: Outcome, count: int = 1) -> list[Record]:
        """Wait for records a background task makes, such as a PingSource tick's."""
        async with asyncio.timeout(5):
            while len(self.outcomes(outcome)) < count:
                self.recorded.clear()
                await self.recorded.wait()
        return self.outcomes(outcome)

    def record(self, record: Record) -> None:
        self.records.append(record)
        self.recorded.set()


class Lab:
    """The session's two servers; `running` serves one test's broker."""

    def __init__(self, subscribers: Subscribers, port: int, client: httpx.AsyncClient) -> None:
        self.subscribers = subscribers
        self.port = port
        self.client = client
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            assert self._app is not None, "no broker is running"
            await self._app(scope, receive, send)

    @asynccontextmanager
    async def running(
        self,
        topology: Topology,
        *,
        endpoints: Mapping[str, str] | None = None,
        time: FakeTime | None = None,
        **options: Any,
    ) -> AsyncIterator[Running]:
        """A broker for `topology`, every function of it at the subscribers' server."""
        time = time or FakeTime()
        url = f"http://127.0.0.1:{self.port}"
        running = Running(self.client, [], time, asyncio.Event())
        broker = Broker(
            topology,
            {**self.subscribers.endpoints(*topology.functions), **(endpoints or {})},
            url=url,
            on_record=running.record,
            clock=time.clock,
            sleep=time.sleep,
            random=lambda: 0.5,
            **options,
        )
        running.broker = broker
        await broker.start()
        self._app = broker.app
        try:
            yield running
        finally:
            self._app = None
            await broker.stop()
