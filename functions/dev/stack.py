"""`kshop dev`: every function, the broker and their servers on this machine, no cluster.

What runs comes from the topology (the chart's values), as on a cluster:
each enabled function is its own `python -m functions` process on its own
port, with K_SINK pointing at the dev broker, which delivers to them by the
same Triggers. Redis and a MongoDB-wire server are started unless REDIS_URL
and MONGODB_URL name running ones; a local SMTP server keeps every mail.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click

import functions
from functions.dev import endpoints, tokens
from functions.dev.endpoints import Endpoints
from functions.dev.logview import Console
from functions.dev.services import (
    HOST,
    MongoServer,
    RedisServer,
    SmtpServer,
    free_ports,
    mongodb_env,
)
from functions.dev.supervisor import Program, Supervisor
from functions.dev.table import table
from functions.topology import Topology, load

NAMESPACE = "default"
STARTUP_TIMEOUT = 60.0
# How long the broker may go on delivering what is in flight once asked to stop;
# below the supervisor's stop timeout, so it says itself what it abandons.
DRAIN_TIMEOUT = 5.0
PACKAGE = Path(functions.__file__).resolve().parent
T = TypeVar("T")


class DevError(Exception):
    """`kshop dev` cannot start: the message says why."""


@dataclass(frozen=True)
class Options:
    only: Sequence[str] = ()
    port: int = 8080
    base_port: int = 8101


@dataclass(frozen=True)
class Servers:
    mongodb: str
    redis: str
    smtp: SmtpServer
    started: frozenset[str]
    """Which of mongodb and redis `kshop dev` started itself."""


def choose(topology: Topology, only: Sequence[str]) -> dict[str, int]:
    """The functions to run, with their port offsets.

    Offsets follow the topology's order over every enabled function, so a
    function keeps its port whatever subset runs.
    """
    enabled = list(topology.enabled())
    unknown = sorted(set(only) - set(enabled))
    if unknown:
        raise DevError(f"--only {','.join(unknown)}: not enabled functions ({', '.join(enabled)})")
    chosen = {name: enabled.index(name) for name in enabled if not only or name in only}
    missing = [name for name in chosen if not (PACKAGE / name / "main.py").exists()]
    if missing:
        raise DevError(
            f"no functions/<name>/main.py for {', '.join(missing)}: "
            "leave them out with --only, or set `enabled: false` in the chart's values"
        )
    return chosen


def check_free(ports: Sequence[int]) -> None:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                raise DevError(f"port {port} is in use (is another kshop dev running?)") from None


def assign_ports(options: Options, chosen: dict[str, int]) -> tuple[int, dict[str, int]]:
    """The broker's port and each chosen function's.

    0 lets the OS choose (the tests run many stacks side by side); a fixed
    base is followed by each function's offset, and every port must be free.
    """
    spare = iter(free_ports(1 + len(chosen)))
    broker = options.port or next(spare)
    base = options.base_port
    ports = {name: base + offset if base else next(spare) for name, offset in chosen.items()}
    check_free([*([broker] if options.port else []), *(ports.values() if base else [])])
    return broker, ports


def start_servers(stack: ExitStack) -> Servers:
    started: set[str] = set()
    redis = os.environ.get("REDIS_URL")
    if not redis:
        redis = stack.enter_context(RedisServer()).url
        started.add("redis")
    mongodb = os.environ.get("MONGODB_URL")
    if not mongodb:
        mongodb = stack.enter_context(MongoServer()).url
        started.add("mongodb")
    smtp = stack.enter_context(SmtpServer(endpoints.MAIL.resolve()))
    return Servers(mongodb, redis, smtp, frozenset(started))


def plan(
    topology: Topology, broker_port: int, ports: dict[str, int], servers: Servers
) -> tuple[list[Program], Endpoints]:
    """The broker and function processes, and where each will answer."""
    broker = f"http://{HOST}:{broker_port}/{NAMESPACE}/{topology.broker.name}"
    urls = {name: f"http://{HOST}:{port}" for name, port in ports.items()}
    local = {
        "PYTHONUNBUFFERED": "1",
        "HOST": HOST,  # a dev stack is for this machine only
        "K_SINK": broker,
        "MONGODB_URL": servers.mongodb,
        **mongodb_env(servers.mongodb),
        "REDIS_URL": servers.redis,
        "SMTP_HOST": servers.smtp.host,
        "SMTP_PORT": str(servers.smtp.port),
        "JWT_SECRET": tokens.jwt_secret(),
        # What the chart's SinkBinding (or its env) gives the functions on a cluster.
        "K_CE_OVERRIDES": topology.eventing.ce_overrides.model_dump_json(),
    }
    enabled = topology.enabled()
    broker_program = Program(
        "broker",
        [
            *(sys.executable, "-m", "functions.dev.broker"),
            *("--port", str(broker_port), "--subscribers", json.dumps(urls)),
            *("--drain-timeout", str(DRAIN_TIMEOUT)),
        ],
        {**os.environ, "PYTHONUNBUFFERED": "1"},
        f"http://{HOST}:{broker_port}/health",
    )
    function_programs = [
        Program(
            name,
            [sys.executable, "-m", "functions"],
            # The topology's env is what the chart sets; the local wiring wins over it.
            {**os.environ, **enabled[name].env, **local, "FUNCTION": name, "PORT": str(port)},
            f"{urls[name]}/health/live",
        )
        for name, port in ports.items()
    ]
    where = Endpoints(
        broker=broker,
        functions=urls,
        mongodb=servers.mongodb,
        redis=servers.redis,
        smtp=f"smtp://{servers.smtp.host}:{servers.smtp.port}",
        mail=str(servers.smtp.directory),
        pid=os.getpid(),
    )
    return [broker_program, *function_programs], where


def describe(
    topology: Topology,
    where: Endpoints,
    servers: Servers,
    slow: Sequence[str],
) -> str:
    """The table of what runs where, and how to start using it."""
    dead_letter = (
        topology.broker.delivery.dead_letter_function if topology.broker.delivery else None
    )
    enabled = topology.enabled()
    triggers = sum(len(enabled[name].triggers) for name in where.functions)
    sources = sum(1 for p in topology.ping_sources if p.sink in where.functions)
    rows = [["broker", where.broker, f"ingress; triggers: {triggers}, ping sources: {sources}"]]
    for name, url in where.functions.items():
        notes = [t.name for t in enabled[name].triggers]
        if name == dead_letter:
            notes.append("dead-letter sink")
        notes += [f"ping {p.name} ({p.schedule})" for p in topology.ping_sources if p.sink == name]
        if name in slow:
            notes.append("NOT ANSWERING")
        rows.append([name, url, ", ".join(notes)])
    for name in ("mongodb", "redis"):
        origin = "started" if name in servers.started else f"from {name.upper()}_URL"
        rows.append([name, getattr(where, name), origin])
    rows.append(["smtp", where.smtp, f"mail kept in {where.mail} (kshop mail)"])
    secret = os.environ.get("JWT_SECRET")
    origin = "from JWT_SECRET" if secret else "the dev default; set JWT_SECRET to change it"
    return "\n".join(
        [
            table(["WHAT", "WHERE", "NOTES"], rows),
            "",
            f"JWT_SECRET={tokens.jwt_secret()}  ({origin})",
            f"Endpoints: {endpoints.FILE}.  Events live in the broker's memory.",
            "Try:  kshop send kshop.user.created --data "
            """'{"id": "u-1", "name": "Ada", "email": "ada@example.com"}'""",
            "      kshop token --sub me --permissions analytics:read   kshop mail   kshop dlq list",
            "Ctrl-C stops everything.",
        ]
    )


async def _unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """The result of work, or None when stop is set first (work is then cancelled)."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if task.done():
        return task.result()
    task.cancel()
    return None


async def _run(options: Options, echo: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    topology = load()
    broker_port, ports = assign_ports(options, choose(topology, options.only))
    with ExitStack() as stack:
        # In a thread, so Ctrl-C is seen while MongoDB starts.
        servers = await asyncio.to_thread(start_servers, stack)
        if stop.is_set():
            return
        programs, where = plan(topology, broker_port, ports, servers)
        supervisor = Supervisor(programs, Console([p.name for p in programs] + ["kshop"], echo))
        supervisor.start()
        try:
            slow = await _unless_stopped(stop, supervisor.wait_healthy(STARTUP_TIMEOUT))
            if slow is not None:
                where.save()
                stack.callback(endpoints.remove)
                echo(describe(topology, where, servers, slow))
                await stop.wait()
        finally:
            echo(click.style("kshop dev: stopping", bold=True))
            # The broker first: it finishes in-flight deliveries while the functions answer.
            await supervisor.stop(["broker"])
            await supervisor.stop()


def run(options: Options, echo: Callable[[str], None] = click.echo) -> None:
    """Run until Ctrl-C or SIGTERM, then stop every process and server."""
    asyncio.run(_run(options, echo))
