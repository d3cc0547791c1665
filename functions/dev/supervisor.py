"""Keep a set of processes running: start them, stream their output, restart the ones that die.

Each process runs in a session of its own, so the terminal's Ctrl-C reaches
only `kshop dev`, which then stops every process group in order: SIGTERM,
time to drain, then SIGKILL for whatever is left, children included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

# Longest output line read whole; a traceback logged as one JSON line can be long.
_LINE_LIMIT = 1024 * 1024


class Output(Protocol):
    def line(self, name: str, text: str) -> None: ...

    def notice(self, name: str, text: str) -> None: ...


@dataclass(frozen=True)
class Program:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    health: str
    """A URL that answers 200 once the program is up."""


@dataclass(frozen=True)
class Backoff:
    """Restart delays: first, doubled on each crash up to most; reset after a stable run."""

    first: float = 0.5
    most: float = 30.0
    stable: float = 10.0

    def next(self, delay: float, ran_for: float) -> float:
        return self.first if ran_for >= self.stable else min(delay * 2, self.most)


@dataclass
class _Running:
    program: Program
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The process's id while it runs."""
        running = self.process is not None and self.process.returncode is None
        return self.process.pid if running and self.process else None


class Supervisor:
    def __init__(
        self,
        programs: Sequence[Program],
        output: Output,
        backoff: Backoff = Backoff(),
        stop_timeout: float = 10.0,
    ) -> None:
        self.output = output
        self.backoff = backoff
        self.stop_timeout = stop_timeout
        self._running = {p.name: _Running(p) for p in programs}

    def start(self) -> None:
        for running in self._running.values():
            running.task = asyncio.create_task(self._keep(running), name=running.program.name)

    async def _keep(self, running: _Running) -> None:
        program = running.program
        delay = self.backoff.first
        while not running.stopping.is_set():
            started = time.monotonic()
            try:
                process = await asyncio.create_subprocess_exec(
                    *program.argv,
                    env=dict(program.env),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    limit=_LINE_LIMIT,
                )
            except OSError as exc:
                self.output.notice(program.name, f"cannot start: {exc}")
                return
            running.process = process
            assert process.stdout is not None
            async for raw in process.stdout:
                self.output.line(program.name, raw.decode(errors="replace").rstrip("\n"))
            code = await process.wait()
            if running.stopping.is_set():
                return
            delay = self.backoff.next(delay, time.monotonic() - started)
            self.output.notice(program.name, f"exited with code {code}; restarting in {delay:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.stopping.wait(), delay)

    async def wait_healthy(self, within: float) -> list[str]:
        """Wait until every program's health URL answers 200; the names that did not in time."""
        deadline = time.monotonic() + within
        waiting = {r.program.name: r.program.health for r in self._running.values()}
        async with httpx.AsyncClient(timeout=1) as client:
            while True:
                for name, url in list(waiting.items()):
                    if await _answers(client, url):
                        del waiting[name]
                if not waiting or time.monotonic() > deadline:
                    return sorted(waiting)
                await asyncio.sleep(0.1)

    async def stop(self, names: Iterable[str] | None = None) -> None:
        """Stop the named programs, or all: SIGTERM, then SIGKILL after stop_timeout.

        A stopped program is not restarted.
        """
        chosen = [self._running[n] for n in names] if names is not None else self._running.values()
        stopping = [r for r in chosen if not r.stopping.is_set()]
        for running in stopping:
            running.stopping.set()
        _signal_groups(stopping, signal.SIGTERM)
        tasks = [r.task for r in stopping if r.task is not None]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self.stop_timeout)
        if late:
            slow = ", ".join(sorted(t.get_name() for t in late))
            self.output.notice("kshop", f"{slow} did not stop in {self.stop_timeout:g} s: killed")
            _signal_groups(stopping, signal.SIGKILL)
        await asyncio.gather(*tasks, return_exceptions=True)


async def _answers(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


def _signal_groups(programs: Iterable[_Running], sig: signal.Signals) -> None:
    for running in programs:
        if running.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(running.pid, sig)
