"""The broker's HTTP side: Knative's ingress path rules and status table (reference, section (a)).

Two read-only additions that Knative's ingress lacks (it answers 405 to every GET):
`GET /health` and `GET /triggers`, a JSON list of the Triggers loaded.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from functions.dev.broker import wire
from functions.dev.broker.records import Outcome, Record
from functions.runtime.app import Receive, Scope, Send, read_body, respond
from functions.runtime.errors import BadRequest, FunctionError, error_body

if TYPE_CHECKING:
    from functions.dev.broker.broker import Broker

ALLOW = {"allow": "POST, OPTIONS"}
_OPTIONS = ALLOW | {"webhook-allowed-origin": "*", "webhook-allowed-rate": "*"}
_JSON = {"content-type": "application/json"}
# Knative's ingress reads any body whole: there is no size limit and no 413.
_NO_LIMIT = sys.maxsize


def request_uri(scope: Scope) -> str:
    """Go's RequestURI: the raw path and, if any, the query string."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    return raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


def route(method: str, uri: str, broker: tuple[str, str]) -> tuple[int, str] | None:
    """The refusal for a request before its body is read, or None to go on."""
    if method != "POST":
        return 405, f"Method {method} is not allowed: POST events to /{'/'.join(broker)}"
    if uri == "/":
        return 404, "Not found: POST events to /{namespace}/{broker}"
    # ingress_handler.go trims ONE trailing slash, then wants exactly "", ns and name.
    parts = uri.removesuffix("/").split("/")
    if len(parts) != 3:
        return 400, f"Malformed path {uri!r}: expected /{{namespace}}/{{broker}}"
    if (parts[1], parts[2]) != broker:
        return 404, f"Broker {parts[1]}/{parts[2]} not found"
    return None


class Ingress:
    """The ASGI application; its lifespan starts and stops the broker."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.broker.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.broker.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if method == "GET" and path in ("/health", "/triggers"):
            document: Any = self.broker.health() if path == "/health" else self.broker.triggers()
            await respond(send, 200, _JSON, json.dumps(document).encode())
            return
        if method == "OPTIONS":
            await respond(send, 200, _OPTIONS)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = route(method, request_uri(scope), (self.broker.namespace, self.broker.name))
        if refusal is not None:
            status, message = refusal
            await self._refuse(send, status, FunctionError(message), headers)
            return
        body = await read_body(headers, receive, _NO_LIMIT)
        try:
            event = wire.carried(headers, body)
        except BadRequest as error:
            await self._refuse(send, 400, error, headers)
            return
        answer = self.broker.admit(event, headers)
        await respond(send, answer.status, ALLOW | (_JSON if answer.body else {}), answer.body)

    async def _refuse(
        self, send: Send, status: int, error: FunctionError, headers: Mapping[str, str]
    ) -> None:
        """Answer in the one error shape, and say so in the live log."""
        # Only a binary-mode request names its event before it is decoded.
        type_, source, id_ = (headers.get(f"ce-{name}", "-") for name in ("type", "source", "id"))
        record = Record(Outcome.REJECTED, type_, source, id_, status=status, detail=error.message)
        self.broker.report(record)
        body = error_body(error, headers.get("x-request-id") or headers.get("ce-id"))
        await respond(send, status, ALLOW | _JSON, body)
