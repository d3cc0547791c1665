"""The broker: admits events, fans them out to Triggers, retries, replies, dead-letters.

Fan-out is asynchronous. Knative's default InMemoryChannel answers the producer only
once every Trigger's delivery has finished, retries included (reference, section (a)),
so one slow or failing subscriber delays or fails the producer and a producer's retry
duplicates the event to every other Trigger. Here the ingress answers 202 as soon as
the event is accepted, like an IMC with `messaging.knative.dev/async-handler: "true"`,
and each delivery runs as a task, at most `concurrency` requests at a time per Trigger.
In-flight events live in this process's memory only: stopping the broker waits for
them up to `drain_timeout`, and whatever is still in flight then is lost.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import re
import ssl
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, partial
from typing import Any

import httpx
from cloudevents.core.base import BaseCloudEvent

from functions.dev.broker import ping, wire
from functions.dev.broker.delivery import Plan, TriggerDelivery, resolve
from functions.dev.broker.dispatch import Answer, Attempt, Sleep, post, with_retries
from functions.dev.broker.filters import Filter, Result, compile_trigger
from functions.dev.broker.ingress import Ingress
from functions.dev.broker.records import Outcome, Record, Reporter, log_record
from functions.runtime.errors import BadRequest, error_body
from functions.topology import Topology, Trigger

log = logging.getLogger("kshop.broker")

# The ingress's MAX_TTL (section (a)).
MAX_TTL = 255
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT32 = range(-(2**31), 2**31)
_DETAIL_CHARS = 200


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process: each takes a tenth of a second to build."""
    return ssl.create_default_context()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _remaining_ttl(event: BaseCloudEvent) -> int:
    """TTLDefaulter: 255 when absent or not an integer, else one less, never below 0."""
    raw = event.get_extension(wire.TTL)
    if not isinstance(raw, str) or not _INTEGER.fullmatch(raw) or int(raw) not in _INT32:
        return MAX_TTL
    return max(int(raw) - 1, 0)


def _describe(answer: Answer) -> str:
    """A short, one-line account of a failed answer for the live log."""
    text = answer.problem or answer.body[:_DETAIL_CHARS].decode(errors="replace")
    return " ".join(text.split())


@dataclass(frozen=True)
class _Envelope:
    """An event as the channel holds it, with the headers that travel along (section (f))."""

    event: BaseCloudEvent
    headers: Mapping[str, str]


@dataclass(frozen=True)
class _Subscription:
    trigger: Trigger
    function: str
    url: str
    filter: Filter
    delivery: TriggerDelivery
    dead_letter_url: str | None
    slots: asyncio.Semaphore

    def describe(self) -> dict[str, Any]:
        plan = self.delivery.plan
        return {
            "name": self.trigger.name,
            "function": self.function,
            "subscriber": self.url,
            "filter": self.trigger.filter.attributes if self.trigger.filter else None,
            "filters": self.trigger.filters,
            "delivery": {
                "retry": plan.retry,
                "backoffPolicy": plan.backoff,
                "backoffDelaySeconds": plan.delay,
                "timeoutSeconds": plan.timeout,
                "format": "json" if self.delivery.structured else "binary",
            },
            "deadLetterSink": self.dead_letter_url,
        }


class Broker:
    """A local Knative broker for one topology; serve `.app` and call start()/stop()."""

    def __init__(
        self,
        topology: Topology,
        endpoints: Mapping[str, str],
        *,
        namespace: str = "default",
        url: str = "http://127.0.0.1:8080",
        concurrency: int = 64,
        drain_timeout: float = 30.0,
        on_record: Reporter = log_record,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        """`endpoints` maps a function name to its base URL; events are POSTed to its `/`.

        A Trigger whose function has no endpoint is not loaded, as a Trigger whose
        subscriber does not resolve is not ready on a cluster. Raises ValueError for
        anything Knative's webhook would refuse (a bad duration, cesql or schedule).
        """
        self.namespace = namespace
        self.name = topology.broker.name
        self.ingress_url = f"{url.rstrip('/')}/{namespace}/{self.name}"
        self.drain_timeout = drain_timeout
        self._endpoints = {name: base.rstrip("/") + "/" for name, base in endpoints.items()}
        self._report_to = on_record
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._subscriptions = self._load_triggers(topology, concurrency)
        self._pings = [
            ping.load(source, namespace, self._endpoints[source.sink])
            for source in topology.ping_sources
            if self._resolves(source.sink, f"pingsource {source.name!r}")
        ]
        self._tasks: set[asyncio.Task[None]] = set()
        self._schedulers: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self.app = Ingress(self)

    def _resolves(self, function: str, user: str) -> bool:
        if function in self._endpoints:
            return True
        log.warning("%s: function %r has no endpoint, so it is not loaded", user, function)
        return False

    def _load_triggers(self, topology: Topology, concurrency: int) -> list[_Subscription]:
        loaded = []
        for function_name, function in topology.enabled().items():
            for trigger in function.triggers:
                if not self._resolves(function_name, f"trigger {trigger.name!r}"):
                    continue
                try:
                    delivery = resolve(topology.broker.delivery, trigger.delivery)
                except ValueError as error:
                    raise ValueError(f"trigger {trigger.name!r}: {error}") from None
                dead_letter = delivery.dead_letter
                if dead_letter and dead_letter not in self._endpoints:
                    log.warning(
                        "trigger %r: dead-letter function %r has no endpoint; "
                        "its failed events will be dropped",
                        trigger.name,
                        dead_letter,
                    )
                loaded.append(
                    _Subscription(
                        trigger=trigger,
                        function=function_name,
                        url=self._endpoints[function_name],
                        filter=compile_trigger(trigger),
                        delivery=delivery,
                        dead_letter_url=self._endpoints.get(dead_letter or ""),
                        slots=asyncio.Semaphore(concurrency),
                    )
                )
        return loaded

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client and start the PingSource schedules (idempotent)."""
        if self._client is not None:
            return
        # No client-wide timeout: Knative has none unless the delivery spec sets one.
        self._client = httpx.AsyncClient(
            verify=_tls(), timeout=None, limits=httpx.Limits(max_connections=None)
        )
        self._schedulers = [
            asyncio.create_task(ping.run(job, self._clock, self._sleep, self._tick))
            for job in self._pings
        ]

    async def drain(self) -> None:
        """Wait until no delivery is in flight, including those that in-flight ones start."""
        while self._tasks:
            # asyncio.wait, unlike gather, leaves the deliveries alone if this is cancelled.
            await asyncio.wait(set(self._tasks))

    async def stop(self) -> None:
        """Stop the schedules, let in-flight deliveries finish within drain_timeout, close."""
        for scheduler in self._schedulers:
            scheduler.cancel()
        await asyncio.gather(*self._schedulers, return_exceptions=True)
        self._schedulers = []
        try:
            await asyncio.wait_for(self.drain(), self.drain_timeout)
        except TimeoutError:
            log.warning(
                "%d deliveries still in flight after %gs are abandoned",
                len(self._tasks),
                self.drain_timeout,
            )
            abandoned = list(self._tasks)
            for task in abandoned:
                task.cancel()
            await asyncio.gather(*abandoned, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self._client is not None else "stopped",
            "broker": f"{self.namespace}/{self.name}",
            "inFlight": len(self._tasks),
        }

    def triggers(self) -> list[dict[str, Any]]:
        return [subscription.describe() for subscription in self._subscriptions]

    # --- ingress ------------------------------------------------------------------

    def report(self, record: Record) -> None:
        try:
            self._report_to(record)
        except Exception:
            log.exception("the record callback failed")

    def _record(self, outcome: Outcome, event: BaseCloudEvent, **details: Any) -> None:
        self.report(
            Record(outcome, event.get_type(), event.get_source(), event.get_id(), **details)
        )

    def admit(self, event: BaseCloudEvent, headers: Mapping[str, str]) -> Answer:
        """What the ingress does with a decoded event: TTL, arrival time, fan-out (section (a))."""
        ttl = _remaining_ttl(event)
        if ttl <= 0:
            error = BadRequest(f"The event's {wire.TTL} is exhausted: it has looped too often")
            self._record(Outcome.REJECTED, event, status=400, detail=error.message)
            request_id = headers.get("x-request-id") or event.get_id()
            return Answer(400, error_body(error, request_id))
        carried = wire.with_attributes(
            event, {wire.ARRIVAL_TIME: wire.timestamp(self._clock()), wire.TTL: str(ttl)}
        )
        envelope = _Envelope(carried, wire.travelling(headers))
        attributes = wire.view(carried)
        matched = [s for s in self._subscriptions if s.filter(attributes) is not Result.FAIL]
        for subscription in matched:
            self._spawn(self._deliver(subscription, envelope))
        names = ", ".join(s.trigger.name for s in matched) or "no trigger"
        self._record(Outcome.ACCEPTED, carried, status=202, detail=f"to {names}")
        return Answer(202)

    # --- delivery -----------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("a delivery crashed", exc_info=error)

    def _post(
        self, url: str, headers: Mapping[str, str], body: bytes, time_limit: float | None
    ) -> Awaitable[Answer]:
        if self._client is None:
            raise RuntimeError("the broker is not started")
        return post(self._client, url, headers, body, time_limit)

    async def _send(
        self, plan: Plan, send: Attempt, event: BaseCloudEvent, trigger: str, destination: str
    ) -> tuple[Answer, dict[str, Any]]:
        """`send` with retries, a record for each retry; the answer and its record details."""

        def retrying(attempt: int, answer: Answer, wait: float) -> None:
            detail = "; ".join(filter(None, [_describe(answer), f"next attempt in {wait:g}s"]))
            self._record(
                Outcome.RETRYING,
                event,
                trigger=trigger,
                destination=destination,
                attempt=attempt,
                status=answer.status,
                detail=detail,
            )

        answer, attempt = await with_retries(plan, send, self._sleep, retrying)
        details = {
            "trigger": trigger,
            "destination": destination,
            "attempt": attempt,
            "status": answer.status,
        }
        return answer, details

    async def _call(
        self, subscription: _Subscription, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        """One attempt at the subscriber, its reply decoded (section (e))."""
        async with subscription.slots:
            answer = await self._post(
                subscription.url, headers, body, subscription.delivery.plan.timeout
            )
        # An empty body completes the delivery, unless the headers make it an event
        # without data (Knative's filter reads the encoding before the body).
        if not answer.ok or not (answer.body or wire.is_cloudevent(answer.headers)):
            return answer
        try:
            return Answer(
                answer.status,
                headers=answer.headers,
                reply=wire.carried(answer.headers, answer.body),
            )
        except BadRequest as error:
            problem = f"{answer.status} with a body that is not a CloudEvent: {error.message}"
            return Answer(502, bad_gateway=problem)

    async def _deliver(self, subscription: _Subscription, envelope: _Envelope) -> None:
        event = envelope.event
        trigger, function = subscription.trigger.name, subscription.function
        plan = subscription.delivery.plan
        # The filter takes the TTL off before the subscriber sees the event (section (a)).
        headers, body = wire.encode(
            wire.with_attributes(event, {}, drop=(wire.TTL,)), subscription.delivery.structured
        )
        request = {
            **envelope.headers,
            **headers,
            "prefer": "reply",
            "kn-namespace": self.namespace,
        }
        answer, details = await self._send(
            plan, partial(self._call, subscription, request, body), event, trigger, function
        )
        if not answer.ok:
            self._record(Outcome.FAILED, event, **details, detail=_describe(answer))
            await self._dead_letter(subscription, envelope, subscription.url, answer)
            return
        if answer.reply is None:
            self._record(Outcome.DELIVERED, event, **details)
            return
        reply = wire.with_attributes(answer.reply, {wire.TTL: event.get_extension(wire.TTL)})
        self._record(Outcome.REPLIED, event, **details, detail=f"reply {reply.get_type()}")
        # The reply carries the subscriber's pass-through response headers, and the trace.
        trace = {k: v for k, v in envelope.headers.items() if k in wire.TRACE_HEADERS}
        reply_headers = trace | wire.pass_through(answer.headers)

        async def publish() -> Answer:
            return self.admit(reply, reply_headers)

        published, details = await self._send(plan, publish, reply, trigger, self.name)
        if not published.ok:
            detail = f"publishing the reply failed: {_describe(published)}"
            self._record(Outcome.FAILED, event, **details, detail=detail)
            await self._dead_letter(subscription, envelope, self.ingress_url, published)

    async def _dead_letter(
        self, subscription: _Subscription, envelope: _Envelope, failed: str, answer: Answer
    ) -> None:
        """The original event, as the channel holds it, to the dead-letter sink (section (d))."""
        event, trigger = envelope.event, subscription.trigger.name
        sink, url = subscription.delivery.dead_letter, subscription.dead_letter_url
        if sink is None or url is None:
            detail = (
                f"dead-letter function {sink!r} has no endpoint" if sink else "no dead letter sink"
            )
            self._record(Outcome.DROPPED, event, trigger=trigger, detail=detail)
            return
        errors = (
            {}
            if answer.bad_gateway
            else wire.error_attributes(failed, answer.status, answer.failure_body)
        )
        letter = wire.with_attributes(event, errors, overwrite=False)
        headers, body = wire.encode(letter, structured=False)
        request = {**envelope.headers, **headers, "kn-namespace": self.namespace}
        plan = subscription.delivery.plan
        final, details = await self._send(
            plan, partial(self._post, url, request, body, plan.timeout), letter, trigger, sink
        )
        if final.ok:
            self._record(Outcome.DEAD_LETTERED, letter, **details)
        else:
            detail = f"the dead-letter sink failed: {_describe(final)}"
            self._record(Outcome.DROPPED, letter, **details, detail=detail)

    # --- PingSource ---------------------------------------------------------------

    def _tick(self, job: ping.Ping) -> None:
        self._spawn(self._ping(job))

    async def _ping(self, job: ping.Ping) -> None:
        await self._sleep(self._random() * ping.JITTER)
        event = job.event(self._clock(), str(uuid.uuid4()))
        headers, body = wire.encode(event, structured=False)
        send = partial(self._post, job.url, headers, body, None)
        answer, details = await self._send(
            ping.PLAN, send, event, f"pingsource/{job.name}", job.sink
        )
        if answer.ok:
            self._record(Outcome.DELIVERED, event, **details)
        else:
            # The adapter has no dead-letter sink: the event is only logged (section (h)).
            self._record(Outcome.DROPPED, event, **details, detail=_describe(answer))
