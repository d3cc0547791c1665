"""Sending one request with Knative's retries, and what came back.

A transport error or a timeout is an Answer with status 500 and a `dispatch error`,
which is what Knative records for it (reference, section (d)).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx
from cloudevents.core.base import BaseCloudEvent

from functions.dev.broker.delivery import Plan

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    reply: BaseCloudEvent | None = None
    # No response at all: why, as Knative words it ("dispatch error: ...").
    dispatch_error: str | None = None
    # A 2xx whose body is not a CloudEvent, which Knative's filter turns into a bare
    # 502: retried, and dead-lettered without knativeerror* attributes (sections (d), (e)).
    bad_gateway: str | None = None

    @property
    def ok(self) -> bool:
        return self.dispatch_error is None and 200 <= self.status < 300

    @property
    def problem(self) -> str:
        return self.dispatch_error or self.bad_gateway or ""

    @property
    def failure_body(self) -> bytes:
        """What knativeerrordata is made of."""
        return self.dispatch_error.encode() if self.dispatch_error else self.body


async def post(
    client: httpx.AsyncClient,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    time_limit: float | None,
) -> Answer:
    """One attempt; the time limit covers the whole exchange, like Go's http.Client.Timeout."""
    try:
        async with asyncio.timeout(time_limit):
            response = await client.post(url, headers=dict(headers), content=body)
    except TimeoutError:
        return Answer(500, dispatch_error=f"dispatch error: no response within {time_limit:g}s")
    except httpx.HTTPError as error:
        return Answer(500, dispatch_error=f"dispatch error: {type(error).__name__}: {error}")
    return Answer(response.status_code, response.content, dict(response.headers))


Attempt = Callable[[], Awaitable[Answer]]
# Told about each failed attempt that will be retried: (attempt, answer, wait).
OnRetry = Callable[[int, Answer, float], None]


async def with_retries(
    plan: Plan, send: Attempt, sleep: Sleep, on_retry: OnRetry
) -> tuple[Answer, int]:
    """Try `send` up to `plan.retry + 1` times; the last answer and its attempt number."""
    attempt = 1
    while True:
        answer = await send()
        final = answer.ok or attempt > plan.retry
        if final or (answer.dispatch_error is None and not plan.retries(answer.status)):
            return answer, attempt
        wait = plan.wait(attempt)
        on_retry(attempt, answer, wait)
        await sleep(wait)
        attempt += 1
