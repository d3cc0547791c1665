"""From an HTTP request carrying a CloudEvent to the handler's answer.

The answer follows Knative's contract (reference, section (e)): a reply event
in the response, or 202 with an EMPTY body. A non-empty body that is not a
CloudEvent would make the broker answer 502 and retry for nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from pydantic import ValidationError

from functions.runtime import codec, idempotency, logs, metrics, tracing
from functions.runtime.errors import BadRequest, FunctionError, classify, error_body
from functions.runtime.events import Event
from functions.runtime.function import Function, Registration
from functions.runtime.idempotency import Response

if TYPE_CHECKING:
    from cloudevents.core.base import BaseCloudEvent

log = logging.getLogger("kshop.events")
JSON = {"content-type": "application/json"}


def validation_details(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "data", "message": e["msg"]}
        for e in error.errors(include_url=False)
    ]


async def handle(function: Function, headers: Mapping[str, str], body: bytes) -> Response:
    """Answer one delivery. Never raises: every failure becomes its status code."""
    started = time.perf_counter()
    name = "invalid"
    try:
        event = codec.decode(headers, body)
        name = event.get_type()
        registration = function.handler_for(name)
        if registration is None:
            # Ack-and-drop would lose the event silently; 400 sends it to the
            # dead-letter store, where it is visible and can be replayed once a
            # handler exists. Knative does not retry a 400.
            metrics.UNHANDLED.labels(function.name).inc()
            name = "unhandled"
            raise BadRequest(f"No handler for event type {event.get_type()!r}")
        response = await _run(function, registration, event, headers)
    except Exception as exc:
        response = _failed(function, name, exc, headers)
    metrics.INVOCATIONS.labels(function.name, "event", name, str(response.status)).inc()
    metrics.DURATION.labels(function.name, "event", name).observe(time.perf_counter() - started)
    return response


def _failed(function: Function, name: str, exc: Exception, headers: Mapping[str, str]) -> Response:
    error = classify(exc)
    if error.status >= 500 and not isinstance(exc, FunctionError):
        log.error("handler failed", exc_info=exc)
    metrics.ERRORS.labels(function.name, name, type(exc).__name__).inc()
    return refusal(error, headers)


def refusal(error: FunctionError, headers: Mapping[str, str]) -> Response:
    """The answer to a delivery that failed: its status, in the one error shape."""
    request_id = headers.get("x-request-id") or headers.get("ce-id")
    return Response(error.status, JSON | error.headers, error_body(error, request_id))


async def _run(
    function: Function,
    registration: Registration,
    event: BaseCloudEvent,
    headers: Mapping[str, str],
) -> Response:
    """The event's handling in its own log context and span, failures included."""
    attributes = event.get_attributes()
    # The extension travels with the event through every broker hop; the HTTP
    # header only covers the last one, so it is the fallback.
    carrier = attributes if "traceparent" in attributes else headers
    parent = tracing.parent(
        {"traceparent": carrier.get("traceparent"), "tracestate": carrier.get("tracestate")}
    )
    event_id, event_type = event.get_id(), event.get_type()
    id_token, type_token = logs.event_id.set(event_id), logs.event_type.set(event_type)
    span = tracing.tracer().start_as_current_span(
        f"{event_type} process",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "cloudevents.event_id": event_id,
            "cloudevents.event_type": event_type,
            "cloudevents.event_source": event.get_source(),
            "faas.trigger": "pubsub",
        },
    )
    try:
        with span as current:
            try:
                return await _process(function, registration, event, codec.is_structured(headers))
            except Exception as exc:
                current.record_exception(exc)
                current.set_status(trace.StatusCode.ERROR, type(exc).__name__)
                return _failed(function, event_type, exc, headers)
    finally:
        logs.event_id.reset(id_token)
        logs.event_type.reset(type_token)


async def _process(
    function: Function, registration: Registration, event: BaseCloudEvent, structured: bool
) -> Response:
    received: Event[Any] = Event(
        id=event.get_id(),
        source=event.get_source(),
        type=event.get_type(),
        data=_parse(registration, event.get_data()),
        subject=event.get_subject(),
        time=event.get_time(),
        extensions={
            k: v for k, v in event.get_attributes().items() if k not in codec.CONTEXT_ATTRIBUTES
        },
        cloudevent=event,
    )
    if not registration.idempotent:
        return await _invoke(function, registration, received, structured)
    digest = idempotency.fingerprint(received.type, received.subject, event.get_data())
    claim = await idempotency.begin(function.name, received.source, received.id, digest)
    if isinstance(claim, Response):
        metrics.DUPLICATES.labels(function.name, received.type).inc()
        return claim
    try:
        response = await _invoke(function, registration, received, structured)
    except BaseException:
        await idempotency.release(claim)
        raise
    # Not awaited (see complete()); the callback runs in this event's log context.
    idempotency.complete(claim, response).add_done_callback(_unrecorded)
    return response


def _unrecorded(recorded: asyncio.Future[Any]) -> None:
    if recorded.cancelled() or (exc := recorded.exception()) is None:
        return
    log.warning(
        "answered, but the response was not recorded: a redelivery runs the handler "
        "again once the lock expires",
        exc_info=exc,
    )


def _parse(registration: Registration, data: Any) -> Any:
    if registration.model is None:
        return data
    if isinstance(data, bytes | str):
        raise BadRequest("Invalid JSON", ["event data must be a JSON object"])
    try:
        return registration.model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest("Validation failed", validation_details(exc)) from None


async def _invoke(
    function: Function, registration: Registration, event: Event[Any], structured: bool
) -> Response:
    reply = await registration.handler(event)
    if reply is None:
        return Response(202, {}, b"")
    metrics.PUBLISHED.labels(function.name, reply.get_type(), "reply", "sent").inc()
    headers, body = codec.encode(reply, structured=structured)
    return Response(200, headers, body)
