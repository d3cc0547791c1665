"""A real OTLP/HTTP trace collector for tests whose spans come from other processes.

    with Collector() as collector:
        ...  # processes with OTEL_EXPORTER_OTLP_ENDPOINT=collector.url
        spans = collector.spans()

It is the Recorder of tests/support/servers.py (as the tracing integration tests
use it), served by uvicorn on a thread of its own, so it answers whatever the
test's event loop is doing; each export request is decoded from OTLP protobuf.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

import uvicorn

from functions.dev.services import Service, free_port
from tests.support.servers import Recorder

if TYPE_CHECKING:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

TRACES = "/v1/traces"
Value = str | bool | int | float


@dataclass(frozen=True)
class Span:
    """One exported span, with ids in their hex form ("" for a root's parent)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str  # SERVER, CONSUMER, PRODUCER, ...
    service: str  # the resource's service.name
    attributes: dict[str, Value] = field(default_factory=dict)
    resource: dict[str, Value] = field(default_factory=dict)


class Collector(Service):
    """An OTLP/HTTP endpoint on loopback that keeps every span exported to it."""

    def __init__(self, startup_timeout: float = 10) -> None:
        self.recorder = Recorder(default_status=200)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.recorder, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()), name="otlp-collector", daemon=True
        )
        self._startup_timeout = startup_timeout

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the OTLP collector did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def spans(self) -> list[Span]:
        """Every span received so far, in the order the requests arrived."""
        return [span for batch in self.batches() for span in batch]

    def batches(self) -> list[list[Span]]:
        """The spans of each export request received so far, one list per request."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
        from opentelemetry.proto.trace.v1.trace_pb2 import Span as Proto

        batches = []
        for request in list(self.recorder.requests):
            assert (request.method, request.path) == ("POST", TRACES), request
            assert request.headers.get("content-type") == "application/x-protobuf", request
            export = ExportTraceServiceRequest.FromString(request.body)
            batch = []
            for resource_spans in export.resource_spans:
                resource = {a.key: _scalar(a.value) for a in resource_spans.resource.attributes}
                service = str(resource["service.name"])
                for scope_spans in resource_spans.scope_spans:
                    batch += [
                        Span(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=Proto.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                            service=service,
                            attributes={a.key: _scalar(a.value) for a in span.attributes},
                            resource=resource,
                        )
                        for span in scope_spans.spans
                    ]
            batches.append(batch)
        return batches


def _scalar(value: AnyValue) -> Value:
    """A string, bool, int or float attribute as itself; anything else as its text."""
    kind = value.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        found: Value = getattr(value, kind)
        return found
    return str(value)
