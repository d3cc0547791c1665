"""Where a warm kshop function spends one event: the runtime's parts, timed in-process.

Runs the no-op bench function's pieces one at a time against a real Redis,
sequentially (no concurrency), and prints microseconds per call, median of
several batches. It prices throughput suggestions; it is not a load test.

    .venv/bin/python bench/profile_event.py [--events 3000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # after the path above: run as a script, not a module
    EVENT_BODY,
    BenchError,
    event_headers,
    exit_status,
    machine,
    markdown_table,
    median,
    redis_server,
)

BATCHES = 5


def full_collection() -> float:
    """Seconds a full collection takes: the pause every event in flight waits out."""
    return median([per_call(gc.collect, 1) for _ in range(3)])


def frozen_collection() -> float:
    """The same after serve's gc.freeze(), undone afterwards for the next batch."""
    gc.freeze()
    try:
        return full_collection()
    finally:
        gc.unfreeze()


def per_call(fn: Callable[[], object], n: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


async def per_call_async(fn: Callable[[int], Awaitable[object]], n: int) -> float:
    await fn(-1)
    started = time.perf_counter()
    for i in range(n):
        await fn(i)
    return (time.perf_counter() - started) / n


async def measure(n: int) -> dict[str, float]:
    # Imported here: the environment (REDIS_URL, FUNCTION) must be set first.
    from opentelemetry import trace

    from bench.apps.noop_function import function
    from functions.runtime import (
        clients,
        codec,
        dispatch,
        idempotency,
        metrics,
        pipelining,
        tracing,
    )

    headers = event_headers("bench.noop")
    event = codec.decode(headers, EVENT_BODY)

    def span() -> None:
        parent = tracing.parent({"traceparent": headers["traceparent"]})
        attributes = {"cloudevents.event_id": "1", "cloudevents.event_type": "bench.noop"}
        with tracing.tracer().start_as_current_span(
            "bench.noop process",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes=attributes,
        ):
            pass

    def count() -> None:
        metrics.INVOCATIONS.labels("bench", "event", "bench.noop", "202").inc()
        metrics.DURATION.labels("bench", "event", "bench.noop").observe(0.001)

    redis = clients.redis()
    run = uuid.uuid4().hex

    async def set_nx(i: int) -> object:
        return await pipelining.call("SET", f"bench:{run}:{i}", "x", "NX", "EX", 60)

    async def complete(i: int) -> object:
        key = f"bench:{run}:{i}"
        return await pipelining.call("EVAL", idempotency._COMPLETE, 1, key, "x", "y", 60)

    async def ping(i: int) -> object:
        return await redis.ping()

    async def shared_ping(i: int) -> object:
        return await pipelining.call("PING")

    host, port = (
        redis.connection_pool.connection_kwargs["host"],
        redis.connection_pool.connection_kwargs["port"],
    )
    reader, writer = await asyncio.open_connection(host, port)

    async def raw_ping(i: int) -> object:
        # The floor under any client: one RESP PING over plain asyncio streams.
        writer.write(b"*1\r\n$4\r\nPING\r\n")
        return await reader.readline()

    many = [event_headers("bench.noop") for _ in range(n + 1)]

    async def whole(i: int) -> object:
        response = await dispatch.handle(function, many[i], EVENT_BODY)
        if response.status != 202:
            raise BenchError(f"the no-op event got {response.status}: {response.body!r}")
        return response

    results = {
        "codec.decode (CloudEvents SDK from_binary + checks)": per_call(
            lambda: codec.decode(headers, EVENT_BODY), n
        ),
        "tracing: extract traceparent, a span, no exporter": per_call(span, n),
        "metrics: one counter, one histogram": per_call(count, n),
        "idempotency.fingerprint (json + sha256)": per_call(
            lambda: idempotency.fingerprint("bench.noop", None, event.get_data()), n
        ),
        "PING over bare asyncio streams (the floor)": await per_call_async(raw_ping, n),
        "redis-py PING (one round trip)": await per_call_async(ping, n),
        "PING on the runtime's shared connection (pipelining)": await per_call_async(
            shared_ping, n
        ),
        "SET NX EX on the shared connection (idempotency.begin)": await per_call_async(set_nx, n),
        "EVAL script on the shared connection (idempotency.complete)": await per_call_async(
            complete, n
        ),
        "dispatch.handle: the whole event": await per_call_async(whole, n),
        "gc.collect(): a full collection, this process's heap": full_collection(),
        "the same with that heap frozen, as a served function's is": frozen_collection(),
    }
    writer.close()
    await clients.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description="Time the parts of one kshop event, warm.")
    parser.add_argument("--events", type=int, default=3000, help="calls per batch (3000)")
    parser.add_argument("--quick", action="store_true", help="300 calls per batch")
    args = parser.parse_args()
    n = 300 if args.quick else max(1, args.events)
    batches: dict[str, list[float]] = {}
    with exit_status(), redis_server() as redis:
        os.environ.update(
            REDIS_URL=redis.url, FUNCTION="bench", REDIS_PREFIX=f"bench-{uuid.uuid4().hex}"
        )
        import uvloop  # the loop uvicorn picks for kshop

        for _ in range(BATCHES):
            for label, seconds in uvloop.run(measure(n)).items():
                batches.setdefault(label, []).append(seconds)
    print(f"One warm event, sequential, median of {BATCHES} batches of {n}; {machine()}\n")
    rows = [[label, f"{median(values) * 1e6:,.0f} µs"] for label, values in batches.items()]
    print(markdown_table(["part", "per call"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
