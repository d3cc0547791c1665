"""Section (h): PingSource schedules, the event they send, and how sending is retried."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from functions.dev.broker import Outcome
from functions.dev.broker.ping import load, schedule
from functions.topology import PingSource, Trigger
from tests.broker.harness import START, FakeTime, Lab, Reply, shop

pytestmark = pytest.mark.integration


def source(**spec: str) -> PingSource:
    return PingSource.model_validate({"name": "nightly", "sink": "orders", **spec})


def test_a_schedule_is_cron_with_optional_seconds_and_a_time_zone() -> None:
    assert schedule("*/15 * * * *").next_after(START) == START + timedelta(minutes=15)
    # Six fields: the first one is seconds, as with robfig/cron's SecondOptional.
    assert schedule("30 * * * * *").next_after(START) == START + timedelta(seconds=30)
    assert schedule("@hourly").next_after(START) == START + timedelta(hours=1)
    new_york = schedule("0 9 * * *", "America/New_York")
    # 9:00 in New York is 14:00 UTC before daylight saving time starts on 8 March, 13:00 after.
    assert new_york.next_after(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(
        2026, 3, 1, 14, tzinfo=UTC
    )
    assert new_york.next_after(START) == datetime(2026, 3, 8, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "timezone", "complaint"),
    [
        ("@every 1m", None, "@every is not allowed"),
        ("61 * * * *", None, "not a cron expression"),
        ("* * * *", None, "not a cron expression"),
        ("* * * * * * *", None, "not a cron expression"),
        ("@fortnightly", None, "not a cron expression"),
        ("* * * * *", "Mars/Olympus_Mons", "not an IANA time zone"),
    ],
)
def test_schedules_knative_refuses_are_refused(
    expression: str, timezone: str | None, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        schedule(expression, timezone)


def test_json_data_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        load(source(schedule="* * * * *", contentType="application/json", data="[1]"), "d", "u")
    load(source(schedule="* * * * *", contentType="text/plain", data="[1]"), "d", "u")


async def test_a_tick_sends_the_ping_event_straight_to_the_sink(lab: Lab) -> None:
    nightly = source(
        schedule="0 9 * * *",
        timezone="America/New_York",
        contentType="application/json",
        data='{"task": "expire"}',
    )
    # `spy` would see the event if it went through the broker.
    topology = shop({"orders": [], "spy": [Trigger(name="everything")]}, pings=[nightly])
    time = FakeTime(cron_waits=1)
    async with lab.running(topology, time=time) as broker:
        await broker.wait_for(Outcome.DELIVERED)
    (request,) = lab.subscribers.requests["orders"]
    (ping,) = lab.subscribers.events("orders")
    assert ping.get_type() == "dev.knative.sources.ping"
    assert ping.get_source() == "/apis/v1/namespaces/default/pingsources/nightly"
    assert uuid.UUID(ping.get_id()).version == 4
    # Sent at 9:00 New York time plus the random delay (the test's random() is 0.5).
    assert ping.get_time() == datetime(2026, 3, 8, 13, 0, 0, 250000, tzinfo=UTC)
    assert time.waits == [17 * 3600, 0.25]
    assert request.headers["content-type"] == "application/json"
    assert request.body == b'{"task": "expire"}'
    assert not lab.subscribers.requests["spy"]


async def test_every_tick_sends_a_new_event(lab: Lab) -> None:
    topology = shop({"orders": []}, pings=[source(schedule="* * * * *")])
    async with lab.running(topology, time=FakeTime(cron_waits=2)) as broker:
        await broker.wait_for(Outcome.DELIVERED, 2)
    first, second = lab.subscribers.events("orders")
    assert first.get_id() != second.get_id()
    assert first.get_source() == second.get_source()
    assert first.get_data() is None  # no data, no content type
    assert "content-type" not in lab.subscribers.requests["orders"][0].headers


@pytest.mark.parametrize(
    ("status", "attempts"),
    [(404, 6), (413, 6), (425, 6), (429, 6), (502, 6), (503, 6), (504, 6), (500, 1), (400, 1)],
)
async def test_sending_is_retried_on_some_statuses_then_dropped(
    lab: Lab, status: int, attempts: int
) -> None:
    lab.subscribers.answer("orders", then=Reply(status))
    topology = shop({"orders": []}, pings=[source(schedule="* * * * *")])
    time = FakeTime(cron_waits=1)
    async with lab.running(topology, time=time) as broker:
        await broker.wait_for(Outcome.DROPPED)
        await broker.broker.drain()
    assert len(lab.subscribers.requests["orders"]) == attempts
    retries = [0.1, 0.2, 0.4, 0.8, 1.6][: attempts - 1]
    assert time.waits == pytest.approx([60, 0.25, *retries])
