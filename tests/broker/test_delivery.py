"""Section (c): which delivery spec applies, retries, backoff, timeouts."""

import pytest

from functions.dev.broker import Outcome
from functions.dev.broker.durations import parse
from functions.topology import Delivery, Trigger
from tests.broker.harness import DEADLETTER, Lab, Reply, event, shop

pytestmark = pytest.mark.integration

ALL = {"f": [Trigger(name="t")]}


def only(trigger_delivery: Delivery) -> dict[str, list[Trigger]]:
    return {"f": [Trigger(name="t", delivery=trigger_delivery)]}


@pytest.mark.parametrize("status", [404, 408, 409, 429, 500, 502, 503, 504])
async def test_these_statuses_are_retried(lab: Lab, status: int) -> None:
    lab.subscribers.answer("f", then=Reply(status))
    async with lab.running(shop(ALL)) as broker:
        await broker.deliver(event())
    assert len(lab.subscribers.requests["f"]) == 3  # FAST: retry 2
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_extension("knativeerrorcode") == str(status)


@pytest.mark.parametrize("status", [400, 401, 403, 413, 422, 300, 302])
async def test_these_statuses_are_not_retried(lab: Lab, status: int) -> None:
    lab.subscribers.answer("f", then=Reply(status))
    async with lab.running(shop(ALL)) as broker:
        await broker.deliver(event())
        assert broker.time.waits == []
    assert len(lab.subscribers.requests["f"]) == 1
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_extension("knativeerrorcode") == str(status)


async def test_transport_errors_are_retried(lab: Lab) -> None:
    closed = {"f": "http://127.0.0.1:9"}  # the discard port: nothing listens
    async with lab.running(shop(ALL), endpoints=closed) as broker:
        await broker.deliver(event())
    retries = broker.outcomes(Outcome.RETRYING)
    assert [(r.attempt, r.status) for r in retries] == [(1, 500), (2, 500)]
    assert "dispatch error" in retries[0].detail
    assert broker.outcomes(Outcome.FAILED)[0].attempt == 3


async def test_the_timeout_applies_to_each_attempt(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(delay=0.5))
    spec = Delivery(retry=1, timeout="PT0.1S", dead_letter_function=DEADLETTER)
    async with lab.running(shop(only(spec))) as broker:
        await broker.deliver(event())
    assert len(lab.subscribers.requests["f"]) == 2
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_extension("knativeerrorcode") == "500"


async def waits(lab: Lab, spec: Delivery, status: int = 503) -> list[float]:
    """The waits between attempts at a subscriber that always answers `status`."""
    lab.subscribers.answer("f", then=Reply(status))
    async with lab.running(shop(ALL, delivery=spec)) as broker:
        await broker.deliver(event())
    return broker.time.waits


async def test_exponential_backoff_doubles_from_the_delay(lab: Lab) -> None:
    spec = Delivery(retry=4, backoff_policy="exponential", backoff_delay="PT0.1S")
    assert await waits(lab, spec) == pytest.approx([0.1, 0.2, 0.4, 0.8])


async def test_linear_backoff_starts_with_an_immediate_retry(lab: Lab) -> None:
    spec = Delivery(retry=4, backoff_policy="linear", backoff_delay="PT0.1S")
    assert await waits(lab, spec) == pytest.approx([0.0, 0.1, 0.2, 0.3])


async def test_without_policy_or_delay_retries_do_not_wait(lab: Lab) -> None:
    assert await waits(lab, Delivery(retry=2, backoff_policy="exponential")) == [0.0, 0.0]
    assert await waits(lab, Delivery(retry=2, backoff_delay="PT1S")) == [0.0, 0.0]


async def test_durations_keep_one_decimal_digit(lab: Lab) -> None:
    spec = Delivery(retry=2, backoff_policy="exponential", backoff_delay="PT0.25S")
    assert await waits(lab, spec) == pytest.approx([0.2, 0.4])
    spec = Delivery(retry=1, backoff_policy="exponential", backoff_delay="PT0.05S")
    assert await waits(lab, spec) == [0.0]


def test_calendar_durations_are_approximations() -> None:
    assert parse("P1D") == 86400
    assert parse("P1W") == 7 * 86400
    assert parse("P1M") == pytest.approx(30.436875 * 86400)
    assert parse("P1Y") == pytest.approx(365.2425 * 86400)
    assert parse("P1DT1H1M1.5S") == 86400 + 3600 + 60 + 1.5
    with pytest.raises(ValueError, match="Knative accepts"):
        parse("PT3600S")  # 16-bit fields: the period library refuses it, so does Knative


async def test_a_broker_without_delivery_gets_the_cluster_default(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(503))
    async with lab.running(shop(ALL, delivery=None)) as broker:
        await broker.deliver(event())
    assert len(lab.subscribers.requests["f"]) == 11
    assert broker.time.waits == pytest.approx([0.2 * 2**k for k in range(10)])
    # The default has no dead-letter sink.
    assert broker.outcomes(Outcome.DROPPED)[0].detail == "no dead letter sink"


async def test_a_trigger_delivery_replaces_the_broker_delivery_whole(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(503))
    # No backoff of its own: the Broker's exponential 0.1 s is not merged in.
    async with lab.running(shop(only(Delivery(retry=1)))) as broker:
        await broker.deliver(event())
        assert broker.time.waits == [0.0]
    assert len(lab.subscribers.requests["f"]) == 2


async def test_the_dead_letter_sink_falls_back_to_the_brokers(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(400))
    async with lab.running(shop(only(Delivery(retry=0)))) as broker:
        await broker.deliver(event())
    assert len(lab.subscribers.events(DEADLETTER)) == 1


async def test_a_trigger_dead_letter_sink_overrides_the_brokers(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(400))
    topology = shop({**only(Delivery(dead_letter_function="other")), "other": []})
    async with lab.running(topology) as broker:
        await broker.deliver(event())
    assert len(lab.subscribers.events("other")) == 1
    assert not lab.subscribers.requests[DEADLETTER]


async def test_retry_after_is_ignored(lab: Lab) -> None:
    # The delivery-retryafter feature is off by default on a cluster.
    lab.subscribers.answer("f", then=Reply(429, headers={"retry-after": "30"}))
    async with lab.running(shop(ALL)) as broker:
        await broker.deliver(event())
    assert broker.time.waits == pytest.approx([0.1, 0.2])


async def test_concurrency_is_bounded_per_trigger(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(delay=0.05))
    lab.subscribers.answer("g", then=Reply(delay=0.05))
    topology = shop({"f": [Trigger(name="t")], "g": [Trigger(name="u")]})
    async with lab.running(topology, concurrency=2) as broker:
        await broker.deliver(*(event(f"e{i}") for i in range(8)))
    assert lab.subscribers.peak == {"f": 2, "g": 2}
    assert len(lab.subscribers.requests["f"]) == 8
