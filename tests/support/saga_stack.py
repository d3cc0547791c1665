"""The saga's functions as real processes, the dev broker between them, and ways to watch.

    async with SagaStack(env, ["orders", "inventory", ...]) as stack:
        response = await stack.http("orders").post("/orders", ...)

Each function is `python -m functions` on its own port, as `kshop dev` runs it.
The broker runs in this process, so a test can read its delivery records and
put a proxy of its own between the broker and the functions (`route`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from functions import topology
from functions.dev.broker import Broker
from functions.dev.broker.records import Outcome, Record
from functions.dev.services import free_port
from functions.topology import Topology
from tests.support.servers import serving

ROOT = Path(__file__).resolve().parents[2]
EVERY_SECOND = "* * * * * *"


def fast_ticks(base: Topology) -> Topology:
    """The chart's topology with the deadline PingSource ticking every second, not minute."""
    sources = [p.model_copy(update={"schedule": EVERY_SECOND}) for p in base.ping_sources]
    return base.model_copy(update={"ping_sources": sources})


@dataclass
class Process:
    name: str
    port: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class SagaStack:
    env: Mapping[str, str]
    names: Sequence[str]
    logs: Path
    # A function's URL as the broker should call it, from its real URL: a proxy's, say.
    route: Callable[[str, str], str] | None = None
    # Deliveries in flight per Trigger: a MongoDB-wire server that serialises writes
    # (FerretDB on SQLite) only turns a deeper queue into lock timeouts and retries.
    concurrency: int = 8
    topology: Topology = field(default_factory=lambda: fast_ticks(topology.load()))
    # What the broker did, each with the time it happened.
    records: list[tuple[float, Record]] = field(default_factory=list)
    processes: dict[str, Process] = field(default_factory=dict)
    broker: Broker | None = None
    _exit: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    async def __aenter__(self) -> SagaStack:
        broker_port = free_port()
        sink = f"http://127.0.0.1:{broker_port}/default/default"
        self.processes = {
            name: Process(name, free_port(), self.logs / f"{name}.log") for name in self.names
        }
        try:
            for process in self.processes.values():
                self._spawn(process, sink)
            await asyncio.gather(*(self.ready(name) for name in self.names))
            endpoints = {
                n: self.route(n, p.url) if self.route else p.url for n, p in self.processes.items()
            }
            self.broker = Broker(
                self.topology,
                endpoints,
                url=f"http://127.0.0.1:{broker_port}",
                on_record=lambda record: self.records.append((time.time(), record)),
                concurrency=self.concurrency,
                drain_timeout=5,
            )
            await self.broker.start()
            self._exit.push_async_callback(self.broker.stop)
            await self._exit.enter_async_context(serving(self.broker.app, port=broker_port))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for client in self._clients.values():
            await client.aclose()
        await self._exit.aclose()
        for name in self.processes:
            self.kill(name)

    def _spawn(self, process: Process, sink: str) -> None:
        env = {
            **os.environ,
            **self.env,
            "FUNCTION": process.name,
            "PORT": str(process.port),
            "K_SINK": sink,
            "PYTHONPATH": str(ROOT),
        }
        with process.log.open("ab") as log:
            process.popen = subprocess.Popen(
                [sys.executable, "-m", "functions"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    async def ready(self, name: str, within: float = 60) -> None:
        process = self.processes[name]
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1) as client:
            while True:
                assert process.popen is not None
                if process.popen.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{process.log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{process.url}/health/ready")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} was not ready in {within} s")
                await asyncio.sleep(0.1)

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash: no draining, no shutdown hooks."""
        popen = self.processes[name].popen
        if popen is not None and popen.poll() is None:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()

    async def restart(self, name: str) -> None:
        assert self.broker is not None
        self._spawn(self.processes[name], self.broker.ingress_url)
        await self.ready(name)

    def http(self, name: str) -> httpx.AsyncClient:
        if name not in self._clients:
            self._clients[name] = httpx.AsyncClient(base_url=self.processes[name].url, timeout=30)
        return self._clients[name]

    def outcomes(self, *wanted: Outcome) -> list[Record]:
        return [r for _, r in self.records if r.outcome in wanted]


async def eventually(
    probe: Callable[[], Any], *, within: float, every: float = 0.1, what: str = "condition"
) -> Any:
    """Poll an async probe until it returns something truthy; that value."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not hold within {within} s (last: {value!r})")
        await asyncio.sleep(every)
