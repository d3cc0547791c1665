"""OpenTelemetry spans that follow one order across every function.

The trace context rides in the CloudEvents `traceparent` extension, which the
broker keeps hop to hop; the HTTP header is the fallback. Spans are exported
over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Spans are recorded only while something exports them. Otherwise every event
and request still gets a span of its own (a new span id, in the incoming trace
or a new one), so logs carry a trace id and every event sent on continues the
trace, but nothing builds, times and drops a span that no one reads: that
costs a fifth of a warm event's CPU and the SDK's import at cold start.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from functions.runtime.settings import settings

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

_PROPAGATOR = TraceContextTextMapPropagator()
# How long the event loop may wait for the GIL while the exporter's thread holds
# it; CPython's default is 5 ms (docs/bench.md, Span export).
EXPORT_SWITCH_INTERVAL = 0.0005
_provider: TracerProvider | None = None


def provider() -> TracerProvider:
    """The process's SDK tracer provider, made once; tests add their exporters to it.

    Asking for it turns recording on: spans are built for its span processors.
    """
    global _provider
    if _provider is None:
        from opentelemetry.sdk.trace import TracerProvider

        _provider = TracerProvider(resource=_resource())
        if settings().otel_exporter_otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            # Smaller, more frequent batches than the SDK's 512 spans every 5 s: its
            # thread encodes a batch holding the GIL, and the event loop waits that
            # long (docs/bench.md, Span export). OTEL_BSP_* still win when set.
            processor = BatchSpanProcessor(
                OTLPSpanExporter(),
                max_export_batch_size=_unless_set("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 64),
                schedule_delay_millis=_unless_set("OTEL_BSP_SCHEDULE_DELAY", 200),
            )
            _provider.add_span_processor(processor)
            # Whenever an event arrives while that thread encodes, the loop waits
            # up to one switch interval for the GIL: shorter turns keep that wait
            # well under the latency the spans are meant to explain.
            sys.setswitchinterval(min(sys.getswitchinterval(), EXPORT_SWITCH_INTERVAL))
        trace.set_tracer_provider(_provider)
    return _provider


def _resource() -> Resource:
    """What the spans come from, in kshop's and Knative's names.

    OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win, as elsewhere in OpenTelemetry.
    """
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    config = settings()
    names = {
        "service.name": f"kshop-{config.function or 'function'}",
        "faas.name": config.k_service,  # the Knative Service
        "faas.version": config.k_revision,  # its revision, e.g. kshop-users-00002
    }
    ours = Resource.create({name: value for name, value in names.items() if value})
    return ours.merge(OTELResourceDetector().detect())


def _unless_set(variable: str, default: int) -> int | None:
    """kshop's default for an SDK setting; None lets the SDK read the variable."""
    return None if os.environ.get(variable) else default


class _ContextOnlyTracer(trace.NoOpTracer):
    """Spans that carry a trace on without being recorded.

    The API's no-op tracer hands the parent's span on unchanged and starts no
    trace at all; this one gives each span its own id and starts a sampled
    trace when there is no parent, as the SDK's default sampler would.
    """

    def start_span(
        self,
        name: str,
        context: context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: object = None,
        links: object = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, flags, state = parent.trace_id, parent.trace_flags, parent.trace_state
        else:
            trace_id = random.getrandbits(128) or 1  # 0 is the invalid id
            flags, state = trace.TraceFlags(trace.TraceFlags.SAMPLED), trace.TraceState()
        span_context = trace.SpanContext(trace_id, random.getrandbits(64) or 1, False, flags, state)
        return trace.NonRecordingSpan(span_context)


_CONTEXT_ONLY = _ContextOnlyTracer()


def tracer() -> trace.Tracer:
    """The tracer every event and request uses: recording only while spans are exported."""
    if _provider is None and not settings().otel_exporter_otlp_endpoint:
        return _CONTEXT_ONLY
    return _recording_tracer()


@cache
def _recording_tracer() -> trace.Tracer:
    return provider().get_tracer("kshop")


def parent(carriers: Mapping[str, str | None]) -> context.Context:
    """The remote parent from the first carrier that has a traceparent."""
    return _PROPAGATOR.extract({k: v for k, v in carriers.items() if v is not None})


def current_traceparent() -> dict[str, str]:
    """The current context as CloudEvents extensions (traceparent, tracestate)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def shutdown() -> None:
    if _provider is not None:
        _provider.force_flush(timeout_millis=2000)
