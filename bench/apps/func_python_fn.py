"""Baseline: a func-python (PyPI `func-python`) CloudEvents function.

Written the way `func create -l python -t cloudevents` scaffolds one: a `new()`
constructor returning an object with an ASGI-style `handle(scope, receive, send)`,
served by `func_python.cloudevent.serve`, which decodes the CloudEvent into
`scope["event"]` (400 if it is not one) and runs hypercorn on asyncio.

The template replies with an event; to match the other contenders this one
acknowledges with 202 and an empty body through `send.http`, the raw-response
escape hatch of func-python's CloudEventSender. It does not log per request,
unlike the template, so that logging does not count against it.
Listens on $LISTEN_ADDRESS (func-python's own variable), e.g. 127.0.0.1:8080.
"""

from __future__ import annotations

from typing import Any

from func_python.cloudevent import serve  # type: ignore[import-untyped]

Scope = dict[str, Any]


class Function:
    async def handle(self, scope: Scope, receive: Any, send: Any) -> None:
        assert scope["event"] is not None  # func-python answered 400 otherwise
        await send.http(
            {"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]}
        )
        await send.http({"type": "http.response.body", "body": b""})


def new() -> Function:
    return Function()


if __name__ == "__main__":
    serve(new)
