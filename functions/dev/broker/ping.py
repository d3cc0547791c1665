"""PingSource: a cron schedule that sends an event straight to its sink (reference, section (h)).

Not through the broker: on a cluster the mtping adapter posts to the sink itself.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloudevents.core.base import BaseCloudEvent
from croniter import croniter

from functions.dev.broker.delivery import Plan
from functions.runtime import codec
from functions.topology import PingSource

EVENT_TYPE = "dev.knative.sources.ping"
# Each tick waits a random 0-500 ms before sending (mtping runner.go).
JITTER = 0.5
# The CloudEvents SDK's retry: 5 retries, 50 ms x 2^n (100 ms ... 1.6 s), and only these.
_RETRIED = frozenset({404, 413, 425, 429, 502, 503, 504})
PLAN = Plan(retry=5, backoff="exponential", delay=0.1, retries=_RETRIED.__contains__)
# robfig/cron's descriptors; `@every` is refused by Knative's webhook.
_DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


@dataclass(frozen=True)
class Schedule:
    expression: str
    zone: tzinfo
    # Six fields: robfig's SecondOptional puts seconds first, croniter last unless told.
    seconds: bool

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment`, in the schedule's time zone."""
        ticks = croniter(
            self.expression, moment.astimezone(self.zone), second_at_beginning=self.seconds
        )
        tick: datetime = ticks.get_next(datetime)
        return tick


def schedule(expression: str, timezone: str | None = None) -> Schedule:
    """Parse a PingSource schedule; ValueError for what Knative's webhook refuses."""
    try:
        zone: tzinfo = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {timezone!r} is not an IANA time zone") from None
    text = expression.strip()
    if text.startswith("@every"):
        raise ValueError(f"schedule {expression!r}: @every is not allowed")
    fields = len(text.split())
    seconds = fields == 6
    valid = (
        text in _DESCRIPTORS
        if text.startswith("@")
        else fields in (5, 6) and croniter.is_valid(text, second_at_beginning=seconds)
    )
    if not valid:
        raise ValueError(f"schedule {expression!r} is not a cron expression")
    return Schedule(text, zone, seconds)


@dataclass(frozen=True)
class Ping:
    name: str
    schedule: Schedule
    source: str
    sink: str
    url: str
    content_type: str | None
    data: bytes | None

    def event(self, now: datetime, event_id: str) -> BaseCloudEvent:
        attributes = {
            "specversion": "1.0",
            "type": EVENT_TYPE,
            "source": self.source,
            "id": event_id,
            "time": now,
        }
        if self.content_type:
            attributes["datacontenttype"] = self.content_type
        return codec.make(attributes, self.data)


def load(source: PingSource, namespace: str, url: str) -> Ping:
    """A PingSource ready to run, sending to `url`; ValueError naming what is wrong."""
    where = f"pingsource {source.name!r}"
    try:
        parsed = schedule(source.schedule, source.timezone)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if source.content_type == "application/json" and source.data is not None:
        try:
            document = json.loads(source.data)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ValueError(f"{where}: data must be a JSON object when contentType is JSON")
    return Ping(
        name=source.name,
        schedule=parsed,
        source=f"/apis/v1/namespaces/{namespace}/pingsources/{source.name}",
        sink=source.sink,
        url=url,
        content_type=source.content_type,
        data=source.data.encode() if source.data is not None else None,
    )


async def run(
    ping: Ping,
    clock: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]],
    tick: Callable[[Ping], None],
) -> None:
    """Call `tick` at every scheduled time, for ever; a tick missed while asleep is skipped."""
    moment = ping.schedule.next_after(clock())
    while True:
        wait = (moment - clock()).total_seconds()
        if wait > 0:
            await sleep(wait)
        tick(ping)
        moment = ping.schedule.next_after(max(moment, clock()))
