"""One trace across functions: the traceparent extension is continued and passed on."""

import asyncio
import io
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from functions.runtime import logs, tracing
from functions.runtime.settings import settings
from functions.runtime.testing import Client, cloudevent, running
from tests.fixtures.services import ServiceEnv
from tests.support import sample
from tests.support.otlp import Collector, Span
from tests.support.sample import Failing, Ping

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


async def test_a_failed_event_is_an_error_span_with_the_exception(
    client: Client, spans: InMemorySpanExporter
) -> None:
    assert (await client.send(Failing(failures=1, error="boom"))).status == 500
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["exception.message"] == "boom"


async def test_the_http_header_is_the_fallback(client: Client) -> None:
    answer = await client.send(Ping(message="t"), headers={"traceparent": TRACEPARENT})
    assert answer.headers["ce-traceparent"].split("-")[1] == TRACE_ID


async def test_without_a_parent_a_new_trace_starts(
    client: Client, spans: InMemorySpanExporter
) -> None:
    answers = [await client.send(Ping(message=m)) for m in "ab"]
    started = spans.get_finished_spans()
    assert [span.parent for span in started] == [None, None]  # each span is a trace's root
    for answer, span in zip(answers, started, strict=True):
        # The reply carries the new trace on, with this function's span as its parent.
        traceparent = answer.headers["ce-traceparent"]
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", traceparent), traceparent
        _, trace_id, span_id, flags = traceparent.split("-")
        assert trace_id == format(span.context.trace_id, "032x") != "0" * 32
        assert span_id == format(span.context.span_id, "016x") != "0" * 16
        assert flags == format(span.context.trace_flags, "02x")
    assert started[0].context.trace_id != started[1].context.trace_id  # a trace per event


async def test_http_api_requests_are_spans_named_by_route(
    client: Client, spans: InMemorySpanExporter
) -> None:
    await client.http.post("/greetings", json={"name": "x"}, headers={"traceparent": TRACEPARENT})
    (span,) = spans.get_finished_spans()
    assert span.kind == SpanKind.SERVER
    assert span.name == "POST /greetings"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.attributes is not None and span.attributes["http.response.status_code"] == 201


class TestWithoutAnExporter:
    """Nothing reads the spans, so none is recorded; the trace still goes on."""

    @pytest.fixture(autouse=True)
    def no_exporter(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.recording = tracing.provider()
        monkeypatch.setattr(tracing, "_provider", None)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
        settings.cache_clear()

    async def test_the_reply_continues_the_trace_from_a_span_of_its_own(
        self, client: Client, spans: InMemorySpanExporter
    ) -> None:
        unsampled = f"00-{TRACE_ID}-00f067aa0ba902b7-00"
        answer = await client.send(
            cloudevent(Ping(message="t"), extensions={"traceparent": unsampled})
        )
        version, trace_id, span_id, flags = answer.headers["ce-traceparent"].split("-")
        assert (version, trace_id, flags) == ("00", TRACE_ID, "00")
        assert span_id not in ("00f067aa0ba902b7", "0" * 16)
        assert spans.get_finished_spans() == ()

    async def test_without_a_parent_a_new_sampled_trace_starts(self, client: Client) -> None:
        first = await client.send(Ping(message="a"))
        second = await client.send(Ping(message="b"))
        _, trace_id, span_id, flags = first.headers["ce-traceparent"].split("-")
        assert trace_id != "0" * 32 and span_id != "0" * 16 and flags == "01"
        assert second.headers["ce-traceparent"].split("-")[1] != trace_id

    async def test_logs_carry_the_event_and_its_trace(self, client: Client) -> None:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logs.JsonFormatter("sample"))
        logger = logging.getLogger("kshop.events")
        logger.addHandler(handler)
        event = cloudevent(
            Failing(failures=1, error="boom"), extensions={"traceparent": TRACEPARENT}
        )
        try:
            assert (await client.send(event)).status == 500
        finally:
            logger.removeHandler(handler)
        entry = json.loads(stream.getvalue().splitlines()[0])
        assert entry["function"] == "sample"
        assert (entry["ce_id"], entry["ce_type"]) == (event.get_id(), "kshop.sample.failed")
        assert entry["trace_id"] == TRACE_ID

    def test_the_tracer_records_once_there_is_a_provider(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert not tracing.tracer().start_span("x").is_recording()
        monkeypatch.setattr(tracing, "_provider", self.recording)
        assert tracing.tracer().start_span("x").is_recording()


# A process that records 100 spans, then gives the batch processor 1.5 s and
# exits without flushing: only what the processor sent on its own arrives.
EXPORTER = """
import os, time
from functions.runtime import tracing
for i in range(100):
    with tracing.tracer().start_as_current_span(f"span {i}"):
        pass
time.sleep(1.5)
os._exit(0)
"""


async def _exported_batches(**env: str) -> list[list[Span]]:
    """The spans of each OTLP request that reached a collector."""
    with Collector() as collector:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            EXPORTER,
            env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, **env},
        )
        assert await process.wait() == 0
        return collector.batches()


async def test_spans_are_exported_in_small_batches_within_a_fraction_of_a_second() -> None:
    # The SDK's own defaults (512 spans, every 5 s) would send nothing in 1.5 s.
    sizes = [len(batch) for batch in await _exported_batches()]
    assert sum(sizes) == 100
    assert max(sizes) <= 64


async def test_the_sdk_s_batch_variables_win_over_kshop_s_defaults() -> None:
    sizes = [len(b) for b in await _exported_batches(OTEL_BSP_MAX_EXPORT_BATCH_SIZE="10")]
    assert sum(sizes) == 100
    assert max(sizes) <= 10


SWITCH_INTERVAL = """
import sys
from functions.runtime import tracing
tracing.tracer().start_span("x").end()
print(sys.getswitchinterval())
"""


@pytest.mark.parametrize(
    ("endpoint", "expected"), [("http://127.0.0.1:9/", tracing.EXPORT_SWITCH_INTERVAL), ("", 0.005)]
)
async def test_exporting_shortens_the_gil_switch_interval(endpoint: str, expected: float) -> None:
    # The exporter thread encodes whole batches holding the GIL; the event loop
    # must not wait CPython's default 5 ms for it. Without export there is no
    # such thread, and the interpreter's default stays.
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SWITCH_INTERVAL, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert float(out) == pytest.approx(expected)


KNATIVE = {"FUNCTION": "users", "K_SERVICE": "kshop-users", "K_REVISION": "kshop-users-00002"}


async def test_spans_name_the_function_and_its_knative_revision() -> None:
    batches = await _exported_batches(**KNATIVE)
    resource = batches[0][0].resource
    assert resource["service.name"] == "kshop-users"
    assert (resource["faas.name"], resource["faas.version"]) == ("kshop-users", "kshop-users-00002")


async def test_the_otel_variables_win_over_kshop_s_names() -> None:
    batches = await _exported_batches(
        **KNATIVE,
        OTEL_SERVICE_NAME="shop-users",
        OTEL_RESOURCE_ATTRIBUTES="faas.version=canary,deployment.environment=staging",
    )
    resource = batches[0][0].resource
    assert resource["service.name"] == "shop-users"
    assert resource["faas.version"] == "canary"
    assert resource["deployment.environment"] == "staging"
