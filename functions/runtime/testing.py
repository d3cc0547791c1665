"""Send a CloudEvent to a function in one line, in-process, and read its answer.

    async with running(function) as client:
        answer = await client.send(UserCreated(id="u1", ...))
        assert answer.status == 202

This drives the function's real ASGI app (startup, dispatch, idempotency,
shutdown); only the network hop is skipped. Tests that need the hop run the
function in a uvicorn subprocess instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.v1.event import CloudEvent

from functions.runtime import codec
from functions.runtime.errors import BadRequest
from functions.runtime.events import EventData
from functions.runtime.function import Function


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def reply(self) -> BaseCloudEvent | None:
        """The reply event, or None when the function answered without one."""
        try:
            return codec.decode(dict(self.headers), self.body) if self.body else None
        except BadRequest:
            return None

    @property
    def data(self) -> Any:
        """The reply event's data; an AssertionError when there is no reply."""
        reply = self.reply
        assert reply is not None, f"no reply event: {self.status} {self.body!r}"
        return reply.get_data()

    def json(self) -> Any:
        return json.loads(self.body)


def cloudevent(
    data: EventData | Any,
    *,
    type: str | None = None,
    source: str = "/kshop/tests",
    id: str | None = None,
    subject: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> CloudEvent:
    """An event to send: its type comes from the model unless given."""
    payload = data.model_dump(mode="json", by_alias=True) if isinstance(data, EventData) else data
    attributes: dict[str, Any] = {
        "type": type or data.event_type,
        "source": source,
        "id": id or str(uuid.uuid4()),
        "datacontenttype": "application/json",
        **(extensions or {}),
    }
    if subject:
        attributes["subject"] = subject
    return CloudEvent(attributes, payload)


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def send(
        self,
        event: CloudEvent | EventData,
        *,
        structured: bool = False,
        headers: Mapping[str, str] | None = None,
        **attributes: Any,
    ) -> Answer:
        if not isinstance(event, CloudEvent):
            event = cloudevent(event, **attributes)
        wire_headers, body = codec.encode(event, structured=structured)
        response = await self.http.post(
            "/", headers={**wire_headers, **(headers or {})}, content=body
        )
        return Answer(response.status_code, response.headers, response.content)


@asynccontextmanager
async def running(function: Function) -> AsyncIterator[Client]:
    """The function started as a server would start it, and a client for it."""
    app = function.app()
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://function") as http:
            yield Client(http)
    finally:
        await app.shutdown()
