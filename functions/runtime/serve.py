"""`python -m functions`: serve the function named by $FUNCTION on $PORT."""

from __future__ import annotations

import gc
import importlib
import signal
import sys
import threading
from typing import TYPE_CHECKING

import uvicorn
from pydantic import ValidationError

from functions.runtime.app import FunctionApp
from functions.runtime.function import Function
from functions.runtime.settings import explain, settings

if TYPE_CHECKING:
    import socket
    from types import FrameType


def load(name: str) -> Function:
    """The `function` object of `functions/<name>/main.py`."""
    module = importlib.import_module(f"functions.{name}.main")
    found = getattr(module, "function", None)
    if not isinstance(found, Function):
        raise SystemExit(f"kshop: functions.{name}.main has no `function = Function(...)`")
    return found


class _Server(uvicorn.Server):
    """On SIGTERM, fail readiness first, then drain in-flight work, then close pools.

    Knative stops routing to a pod whose readiness fails; SHUTDOWN_DELAY gives
    it time to notice before the listener closes.
    """

    def __init__(self, config: uvicorn.Config, app: FunctionApp) -> None:
        super().__init__(config)
        self.app = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.app.on_long_lived = _Freezer().rearm

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.app.draining or sig != signal.SIGTERM or not settings().shutdown_delay:
            self.app.draining = True
            self._exit(sig, frame)
            return
        self.app.draining = True
        timer = threading.Timer(settings().shutdown_delay, self._exit, args=(sig, frame))
        timer.daemon = True
        timer.start()

    def _exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal once drained, so the process would die by it;
        # a drained function has nothing left to do and exits 0.
        self._captured_signals.clear()


class _Freezer:
    """Leaves what lives as long as the process out of full collections.

    Every full collection walks every tracked object, the modules' included: under
    load that is a pause of ~35 ms every couple of seconds. Frozen objects are not
    walked. What is loaded at startup is frozen at once; what is built later and
    kept (what the first events import lazily: redis-py, the tracing SDK; a
    function's FastAPI app, on its first API request) is frozen by the first full
    collection after it, whose survivors it is. Whatever else is alive at those
    moments (a connection, a request in flight) is frozen with it: still freed when
    nothing refers to it, and never collected only if it ends up in a reference
    cycle, a one-off of a few objects.
    """

    def __init__(self) -> None:
        self.pending = True
        gc.freeze()
        gc.callbacks.append(self._after_collection)

    def rearm(self) -> None:
        """Something long-lived was just built: freeze the next full collection's survivors."""
        self.pending = True

    def _after_collection(self, phase: str, info: dict[str, int]) -> None:
        if self.pending and phase == "stop" and info["generation"] == 2:
            self.pending = False
            gc.freeze()


def run(function: Function) -> None:
    """Serve one function until SIGTERM or SIGINT."""
    app = function.app()
    config = uvicorn.Config(
        app,
        host=settings().host,
        port=settings().port,
        loop="auto",
        http="httptools",
        ws="none",  # a function serves no websockets; a stray wsproto must not load
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=25,
    )
    _Server(config, app).run()


def main() -> None:
    try:
        name = settings().function
    except ValidationError as exc:
        sys.exit(f"kshop: invalid environment: {explain(exc)}")
    if not name:
        sys.exit("kshop: set FUNCTION to the function to serve, e.g. FUNCTION=analytics")
    run(load(name))
