"""Publish events to the broker at K_SINK through one pooled HTTP client.

Transport errors and 5xx are retried with exponential backoff (tenacity);
anything else is a bug in the event and fails at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from functions.runtime import clients, codec
from functions.runtime.errors import Unavailable
from functions.runtime.settings import settings

if TYPE_CHECKING:
    from cloudevents.core.base import BaseCloudEvent


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


async def send(event: BaseCloudEvent, url: str | None = None) -> None:
    """POST one event in binary mode; Unavailable (503) when the sink stays down."""
    target = url or settings().k_sink
    if not target:
        raise Unavailable("K_SINK is not set: this function has nowhere to publish")
    headers, body = codec.encode(event)
    retrying = AsyncRetrying(
        retry=retry_if_exception(_transient),
        stop=stop_after_attempt(settings().publish_retries + 1),
        wait=wait_exponential(multiplier=0.1, max=2),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                response = await clients.http().post(target, headers=headers, content=body)
                response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code >= 500:
            raise Unavailable(f"The broker answered {exc.response.status_code}") from exc
        raise
    except httpx.TransportError as exc:
        raise Unavailable(f"The broker is unreachable: {type(exc).__name__}") from exc
