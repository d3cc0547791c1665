"""RED metrics per function and event type or route, in Prometheus format."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

INVOCATIONS = Counter(
    "kshop_invocations_total",
    "Events and HTTP requests handled, by outcome.",
    ["function", "kind", "name", "status"],
)
ERRORS = Counter(
    "kshop_errors_total", "Failed invocations, by error class.", ["function", "name", "error"]
)
DURATION = Histogram(
    "kshop_duration_seconds",
    "Time to handle an event or an HTTP request.",
    ["function", "kind", "name"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PUBLISHED = Counter(
    "kshop_events_published_total",
    "Events sent to the broker (K_SINK) or as replies.",
    ["function", "type", "via", "outcome"],
)
DUPLICATES = Counter(
    "kshop_duplicates_suppressed_total",
    "Redeliveries answered from the idempotency store without running the handler.",
    ["function", "type"],
)
UNHANDLED = Counter(
    "kshop_unhandled_events_total",
    "Events whose type no handler is registered for.",
    ["function"],
)
COLD_START = Gauge(
    "kshop_cold_start_seconds", "Seconds from process start to ready to serve.", ["function"]
)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
