"""One trace across functions: the traceparent extension is continued and passed on."""

from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from functions.runtime import tracing
from functions.runtime.settings import settings
from functions.runtime.testing import Client, cloudevent, running
from tests.fixtures.services import ServiceEnv
from tests.support import sample
from tests.support.sample import Ping

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    tracing.provider().add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
async def client(service_env: ServiceEnv, spans: InMemorySpanExporter) -> AsyncIterator[Client]:
    spans.clear()
    settings.cache_clear()
    async with running(sample.function) as client:
        yield client


async def test_the_reply_continues_the_trace_of_the_extension(
    client: Client, spans: InMemorySpanExporter
) -> None:
    answer = await client.send(
        cloudevent(Ping(message="t"), extensions={"traceparent": TRACEPARENT})
    )
    assert answer.headers["ce-traceparent"].split("-")[1] == TRACE_ID
    (span,) = spans.get_finished_spans()
    assert span.name == "kshop.sample.pinged process"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    # The reply's parent is this function's span, not the caller's.
    assert answer.headers["ce-traceparent"].split("-")[2] == format(span.context.span_id, "016x")


async def test_the_http_header_is_the_fallback(client: Client) -> None:
    answer = await client.send(Ping(message="t"), headers={"traceparent": TRACEPARENT})
    assert answer.headers["ce-traceparent"].split("-")[1] == TRACE_ID


async def test_without_a_parent_a_new_trace_starts(client: Client) -> None:
    answer = await client.send(Ping(message="t"))
    assert answer.headers["ce-traceparent"].split("-")[1] != TRACE_ID


async def test_http_api_requests_are_spans_named_by_route(
    client: Client, spans: InMemorySpanExporter
) -> None:
    await client.http.post("/greetings", json={"name": "x"}, headers={"traceparent": TRACEPARENT})
    (span,) = spans.get_finished_spans()
    assert span.kind == SpanKind.SERVER
    assert span.name == "POST /greetings"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.attributes is not None and span.attributes["http.response.status_code"] == 201
