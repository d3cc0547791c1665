"""The ASGI application of one function.

CloudEvents (`POST /`), health and metrics are served here directly, on the
hot path, without a web framework. Every other path goes to the function's
FastAPI app, which is built on the first such request: an event-driven
function's cold start never pays for FastAPI's import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from functions.runtime import clients, dispatch, health, logs, metrics, tracing
from functions.runtime.errors import NotFound, PayloadTooLarge, error_body
from functions.runtime.settings import settings

if TYPE_CHECKING:
    from functions.runtime.function import Function

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("kshop.runtime")


def _headers(scope: Scope) -> dict[str, str]:
    # ASGI servers give lower-case names; a repeated header keeps its last value.
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def respond(send: Send, status: int, headers: dict[str, str], body: bytes = b"") -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def read_body(headers: dict[str, str], receive: Receive, limit: int) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class FunctionApp:
    def __init__(self, function: Function) -> None:
        self.function = function
        self.draining = False
        self.health = health.Health(function)
        self._api: ASGIApp | None = None
        self._api_lock = asyncio.Lock()
        # Called once something that lives as long as the process has been built;
        # serve.py sets it to keep full garbage collections from walking it.
        self.on_long_lived: Callable[[], None] = lambda: None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == "/" and method == "POST":
                await self._event(scope, receive, send)
            elif path == "/health/live":
                await respond(send, 200, dispatch.JSON, b'{"status":"alive"}')
            elif path == "/health/ready":
                status, body = await self.health.ready(draining=self.draining)
                await respond(send, status, dispatch.JSON, body)
            elif path == "/metrics":
                payload, content_type = metrics.exposition()
                await respond(send, 200, {"content-type": content_type}, payload)
            else:
                await self._http(scope, receive, send)

    async def _event(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        try:
            body = await read_body(headers, receive, settings().max_body_bytes)
        except PayloadTooLarge as error:
            response = dispatch.refusal(error, headers)
        else:
            response = await dispatch.handle(self.function, headers, body)
        await respond(send, response.status, response.headers, response.body)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An HTTP API request, traced and measured like an event."""
        from opentelemetry import trace

        headers = _headers(scope)
        started = time.perf_counter()
        status = 500

        async def measured_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        span = tracing.tracer().start_as_current_span(
            f"{scope['method']} {scope['path']}",
            context=tracing.parent(
                {"traceparent": headers.get("traceparent"), "tracestate": headers.get("tracestate")}
            ),
            kind=trace.SpanKind.SERVER,
        )
        route = "unmatched"
        with span as current:
            try:
                api = await self._load_api()
                if api is None:
                    error = NotFound(f"No route for {scope['method']} {scope['path']}")
                    body = error_body(error, headers.get("x-request-id"))
                    await respond(measured_send, 404, dispatch.JSON, body)
                else:
                    replay = await self._buffered(headers, receive)
                    # Starlette re-raises after its error handler has answered and
                    # logged; the client already has its 5xx.
                    with contextlib.suppress(Exception):
                        await api(scope, replay, measured_send)
                    route = getattr(scope.get("route"), "path", route)
            except PayloadTooLarge as error:
                body = error_body(error, headers.get("x-request-id"))
                await respond(measured_send, error.status, dispatch.JSON, body)
            finally:
                name = f"{scope['method']} {route}"
                current.update_name(name)
                current.set_attribute("http.route", route)
                current.set_attribute("http.response.status_code", status)
                metrics.INVOCATIONS.labels(self.function.name, "http", name, str(status)).inc()
                metrics.DURATION.labels(self.function.name, "http", name).observe(
                    time.perf_counter() - started
                )

    @staticmethod
    async def _buffered(headers: dict[str, str], receive: Receive) -> Receive:
        """The whole body read up front, so an oversized one is 413 before any framework.

        Bodies are small (MAX_BODY_BYTES, 256 KiB by default), so buffering is cheap;
        FastAPI would otherwise turn a failed read into a 400.
        """
        body = await read_body(headers, receive, settings().max_body_bytes)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    async def _load_api(self) -> ASGIApp | None:
        if self.function.api is None:
            return None
        async with self._api_lock:
            if self._api is None:
                from functions.runtime import api

                self._api = await asyncio.to_thread(api.build, self.function)
                self.on_long_lived()
        return self._api

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        logs.configure(self.function.name, settings().log_level)
        for hook in self.function.startup:
            await hook()
        metrics.COLD_START.labels(self.function.name).set(process_age())
        log.info("ready", extra={"uses": sorted(self.function.uses)})

    async def shutdown(self) -> None:
        self.draining = True
        for hook in self.function.shutdown:
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")
        await clients.close()
        tracing.shutdown()


def process_age() -> float:
    """Seconds since this process was exec'd, from the kernel's own clock."""
    try:
        with open("/proc/self/stat") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as uptime:
            up = float(uptime.read().split()[0])
        return max(0.0, up - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.process_time()
