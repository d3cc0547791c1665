"""Which delivery spec applies to a Trigger, and what it means: attempts, waits, timeout.

Everything here is reference section (c). Retry-After is ignored: Knative honours it
only with the `delivery-retryafter` feature flag, which is off by default, and then
its webhook refuses `retryAfterMax`, so a default cluster ignores the header too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from functions.dev.broker import durations
from functions.topology import Delivery

Backoff = Literal["linear", "exponential"]

# A Broker without `spec.delivery` gets the cluster default (config-br-defaults).
CLUSTER_DEFAULT = Delivery(retry=10, backoff_policy="exponential", backoff_delay="PT0.2S")
# Knative's SelectiveRetry: every other status below 500 is final.
_RETRIED = frozenset({404, 408, 409, 429})


def knative_retries(status: int) -> bool:
    """Whether the broker retries a response with this status (transport errors always are)."""
    return status in _RETRIED or status >= 500


@dataclass(frozen=True)
class Plan:
    """How often to try, how long to wait between tries, how long one try may take."""

    retry: int
    backoff: Backoff | None = None
    delay: float | None = None
    timeout: float | None = None
    retries: Callable[[int], bool] = knative_retries

    def wait(self, retry: int) -> float:
        """Seconds before retry number `retry` (1-based), as go-retryablehttp computes it."""
        if self.backoff is None or self.delay is None:
            return 0.0
        if self.backoff == "exponential":
            return self.delay * (1 << (retry - 1))
        # Linear starts from zero: the first retry is immediate.
        return self.delay * (retry - 1)


@dataclass(frozen=True)
class TriggerDelivery:
    plan: Plan
    dead_letter: str | None
    structured: bool


def plan(spec: Delivery) -> Plan:
    """The retry plan of a delivery spec; ValueError for what Knative's webhook refuses."""
    delay = durations.parse(spec.backoff_delay) if spec.backoff_delay is not None else None
    if delay is not None and delay < 0:
        raise ValueError(f"backoffDelay {spec.backoff_delay!r} must not be negative")
    timeout = durations.parse(spec.timeout) if spec.timeout is not None else None
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout {spec.timeout!r} must be positive")
    return Plan(spec.retry or 0, spec.backoff_policy, delay, timeout)


def resolve(broker: Delivery | None, trigger: Delivery | None) -> TriggerDelivery:
    """The Trigger's spec replaces the Broker's whole; only the dead-letter sink falls back."""
    broker = broker if broker is not None else CLUSTER_DEFAULT
    spec = trigger if trigger is not None else broker
    dead_letter = spec.dead_letter_function or broker.dead_letter_function
    # Knative's `format`: json means structured mode to the subscriber.
    structured = spec.format == "json"
    return TriggerDelivery(plan(spec), dead_letter, structured)
