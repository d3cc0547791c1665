"""Publish events to the broker at K_SINK through one pooled HTTP client.

Transport errors and 5xx are retried with exponential backoff (tenacity);
anything else is a bug in the event and fails at once. A SinkBinding's
`ceOverrides` (K_CE_OVERRIDES) are set on every event sent, as Knative's own
sources do; its K_CA_CERTS are trusted by the client (`clients.http`), and its
OIDC token, when Eventing's OIDC authentication is on, goes with every request.
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


def _authorization() -> dict[str, str]:
    """The OIDC token a SinkBinding mounted for the sink, as a header; none without OIDC.

    Read for every request: Knative renews the Secret before the token expires,
    and the kubelet swaps the file's contents in place.
    """
    path = settings().oidc_token_file
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise Unavailable(f"The OIDC token at {path} cannot be read: {exc.strerror}") from exc
    return {"Authorization": f"Bearer {token}"} if token else {}


def sink() -> str:
    """The broker's URL; Unavailable (503) when K_SINK is not set."""
    target = settings().k_sink
    if not target:
        raise Unavailable("K_SINK is not set: this function has nowhere to publish")
    return target


async def post(headers: dict[str, str], body: bytes) -> httpx.Response:
    """One POST to the broker at K_SINK, with the OIDC token when there is one; no retry."""
    return await clients.http().post(sink(), headers=headers | _authorization(), content=body)


async def send(event: BaseCloudEvent) -> None:
    """POST one event in binary mode; Unavailable (503) when the sink stays down."""
    if overrides := settings().k_ce_overrides.extensions:
        event = codec.make({**event.get_attributes(), **overrides}, event.get_data())
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
                response = await post(headers, body)
                response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code >= 500:
            raise Unavailable(f"The broker answered {exc.response.status_code}") from exc
        raise
    except httpx.TransportError as exc:
        raise Unavailable(f"The broker is unreachable: {type(exc).__name__}") from exc
