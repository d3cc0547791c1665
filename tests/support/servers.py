"""Real HTTP servers on loopback for tests: a function, or a sink that records what it gets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from functions.dev.services import free_port
from functions.runtime.app import ASGIApp, Receive, Scope, Send, read_body, respond


@contextlib.asynccontextmanager
async def serving(
    app: ASGIApp, port: int | None = None, tls: tuple[Path, Path] | None = None
) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn in this event loop; yields its base URL.

    With `tls` (a certificate and its key) it serves HTTPS.
    """
    port = port or free_port()
    certificate, key = tls or (None, None)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ssl_certfile=certificate,
        ssl_keyfile=key,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """An HTTP endpoint that records requests and answers from a script of statuses."""

    statuses: list[int] = field(default_factory=list)
    default_status: int = 202
    requests: list[Request] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body = await read_body(headers, receive, 10 * 1024 * 1024)
        self.requests.append(Request(scope["method"], scope["path"], headers, body))
        status = self.statuses.pop(0) if self.statuses else self.default_status
        await respond(send, status, {})
