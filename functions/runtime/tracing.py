"""OpenTelemetry spans that follow one order across every function.

The trace context rides in the CloudEvents `traceparent` extension, which the
broker keeps hop to hop; the HTTP header is the fallback. Spans are exported
over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from functions.runtime.settings import settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def provider() -> TracerProvider:
    """The process's tracer provider, made once; tests add their exporters to it."""
    global _provider
    if _provider is None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        _provider = TracerProvider(
            resource=Resource.create({"service.name": f"kshop-{settings().function or 'function'}"})
        )
        if settings().otel_exporter_otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(_provider)
    return _provider


@cache
def tracer() -> trace.Tracer:
    """One tracer for the process: every event and request asks for it."""
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
