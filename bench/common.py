"""What both benchmarks share: the contenders, their processes, Redis, events and tables."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.server
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType

from functions.dev.services import RedisServer, ServiceError, free_port, tools_dir

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
HOST = "127.0.0.1"
MIB = 1024 * 1024
# How often a cold-start probe tries to connect: fine enough that the poll
# adds at most a few ms to a start-up measured in hundreds.
POLL_INTERVAL = 0.005


class BenchError(RuntimeError):
    """A contender did not start or answer; the benchmark exits non-zero."""


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    server: str  # how it is served, for the table
    argv: tuple[str, ...]  # after the interpreter
    env: Mapping[str, str] = field(default_factory=dict)
    uses_redis: bool = False

    def environment(self, port: int, redis_url: str | None) -> dict[str, str]:
        # Nothing from the caller's shell may switch a feature on or off unseen:
        # no PYTHON* (import paths, -X options), no OTEL_* (span export).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OTEL_"))}
        env.update(self.env)
        env["PORT"] = str(port)
        # func-python reads its own variable for the address to bind.
        env["LISTEN_ADDRESS"] = f"{HOST}:{port}"
        if self.uses_redis:
            if redis_url is None:
                raise BenchError(f"{self.label} needs Redis")
            env["REDIS_URL"] = redis_url
            # A fresh prefix per process: no run sees another's idempotency records.
            env["REDIS_PREFIX"] = f"bench-{uuid.uuid4().hex[:12]}"
        return env


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


UVICORN = "uvicorn 1 worker, uvloop, httptools"
FASTAPI = Contender("fastapi", "bare FastAPI", UVICORN, ("-m", "bench.apps.bare_fastapi"))
FUNC_PYTHON = Contender(
    "func-python",
    f"func-python {_version('func-python')}",
    "hypercorn (its own), asyncio loop, h11",
    ("-m", "bench.apps.func_python_fn"),
)


def kshop_analytics() -> Contender:
    """analytics with every runtime feature on: idempotency, metrics, tracing, JSON logs."""
    return Contender(
        "kshop",
        "kshop analytics",
        UVICORN,
        ("-m", "functions"),
        {"FUNCTION": "analytics", "LOG_LEVEL": "INFO", "HOST": HOST},
        uses_redis=True,
    )


def with_otlp(contender: Contender, endpoint: str) -> Contender:
    """The same kshop contender with span export over OTLP/HTTP turned on: a row of its own."""
    env = {**contender.env, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    return replace(
        contender, key=f"{contender.key}-otlp", label=f"{contender.label} + OTLP", env=env
    )


def without_idempotency(contender: Contender) -> Contender:
    """The no-op contender without its lock in Redis: a row of its own."""
    env = {**contender.env, "BENCH_IDEMPOTENT": "0"}
    return replace(
        contender,
        key=f"{contender.key}-unlocked",
        label=f"{contender.label}, no idempotency",
        env=env,
    )


def contenders(kshop: Contender, otlp: str | None, *, unlocked: bool = False) -> list[Contender]:
    """kshop, its variants that were asked for, and the two baselines."""
    variants = [without_idempotency(kshop)] if unlocked else []
    variants += [with_otlp(kshop, otlp)] if otlp else []
    return [kshop, *variants, FASTAPI, FUNC_PYTHON]


def kshop_noop() -> Contender:
    """A no-op handler with idempotency on Redis, metrics and tracing."""
    return Contender(
        "kshop",
        "kshop no-op",
        UVICORN,
        ("-m", "bench.apps.noop_function"),
        {"LOG_LEVEL": "INFO", "HOST": HOST},
        uses_redis=True,
    )


# -- processes ---------------------------------------------------------------


class Server:
    """One contender's process, in a session of its own so it dies with its children."""

    def __init__(
        self, contender: Contender, redis_url: str | None, logdir: Path, python: Path = PYTHON
    ) -> None:
        self.contender = contender
        self.port = free_port()
        self.env = contender.environment(self.port, redis_url)
        self.argv = [str(python), *contender.argv]
        self.log = logdir / f"{contender.key}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> float:
        """Exec the server; returns the perf_counter time taken just before the exec."""
        with self.log.open("wb") as log:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.started

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError(f"{self.contender.label} is not running")
        return self.process.pid

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise BenchError(f"{self.contender.label} exited (code {code}).\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:]) or "(empty log)"

    def stop(self, grace: float = 0.0) -> None:
        """Kill the whole process group; SIGTERM first when a grace period is given."""
        process, self.process = self.process, None
        if process is None:
            return
        if grace > 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def servers_cleanup() -> Iterator[list[Server]]:
    """Every server appended to the list is killed on the way out, whatever happens."""
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def terminate_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so the finally blocks kill what we started."""

    def raise_exit(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, raise_exit)


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name, from field 3 (state) on."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces and parentheses; fields follow the last ")".
        return stat.read().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        tree.append(current)
    return tree


def rss_tree(pid: int) -> int:
    """VmRSS in bytes of a process and all its descendants."""
    return sum(_vmrss(p) for p in process_tree(pid))


def _vmrss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Usage:
    cpu: tuple[float, ...]  # seconds, user and system, per process measured (with descendants)
    steal: float  # the share of the machine's CPU time the hypervisor gave to others


class Meter:
    """CPU time of some processes, and the machine's stolen time, from now until `stop()`.

    Steal is the noise no benchmark here controls: on a shared VM the
    hypervisor takes the vCPUs away now and then, and every contender's tail
    latency grows with it. Printing it beside the figures shows how much.
    """

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self.cpu, self.ticks = self._now()

    def _now(self) -> tuple[list[float], tuple[int, int]]:
        return [_cpu_seconds(pid) for pid in self.pids], _machine_ticks()

    def stop(self) -> Usage:
        cpu, (stolen, total) = self._now()
        elapsed = total - self.ticks[1]
        return Usage(
            tuple(after - before for after, before in zip(cpu, self.cpu, strict=True)),
            (stolen - self.ticks[0]) / elapsed if elapsed else 0.0,
        )


def _cpu_seconds(pid: int) -> float:
    ticks = 0
    for member in process_tree(pid):
        try:
            fields = _stat_fields(member)
        except OSError:  # exited meanwhile
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    """(steal, all) clock ticks of every CPU since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(x) for x in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time
    # is already counted in user, so it is left out of the total.
    return values[7], sum(values[:8])


# -- Redis -------------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server on a free loopback port."""
    server = RedisServer()
    try:
        server.start()
    except ServiceError as error:
        raise BenchError(str(error)) from None
    try:
        yield server
    finally:
        server.stop()


class _OtlpSink(http.server.BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and drops them: a collector that costs nothing."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per export would drown the tables


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    """A loopback OTLP/HTTP endpoint in a thread; yields its base URL."""
    server = http.server.ThreadingHTTPServer((HOST, 0), _OtlpSink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- CloudEvents -------------------------------------------------------------

# Kept identical for every contender; the baselines ignore what they do not use.
EVENT_BODY = json.dumps({"userId": "u-1", "totalCents": 1250}).encode()


def event_headers(event_type: str) -> dict[str, str]:
    """Binary-mode CloudEvent headers with a fresh id and a sampled trace context."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-source": "/bench",
        "ce-type": event_type,
        "ce-time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "traceparent": f"00-{trace_id}-{span_id}-01",
    }


def post_event(port: int, event_type: str, timeout: float) -> int:
    """POST one new CloudEvent; the status. OSError when nothing listens yet."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("POST", "/", EVENT_BODY, event_headers(event_type))
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def first_answer(server: Server, event_type: str, timeout: float) -> tuple[float, int]:
    """Poll with a new event every POLL_INTERVAL until a 2xx; (perf_counter time, status)."""
    deadline = time.perf_counter() + timeout
    last = "no connection"
    while time.perf_counter() < deadline:
        server.check_alive()
        try:
            status = post_event(
                server.port, event_type, timeout=max(0.1, deadline - time.perf_counter())
            )
        except (ConnectionError, http.client.HTTPException, TimeoutError) as exc:
            # Refused until the server listens; reset if it closes a half-ready socket.
            last = type(exc).__name__
            time.sleep(POLL_INTERVAL)
            continue
        if 200 <= status < 300:
            return time.perf_counter(), status
        if status != 429 and status < 500:
            raise BenchError(
                f"{server.contender.label} refused the event with {status}.\n{server.log_tail()}"
            )
        last = f"HTTP {status}"  # 429/5xx: not ready yet; Knative would retry too
        time.sleep(POLL_INTERVAL)
    raise BenchError(
        f"{server.contender.label} gave no 2xx within {timeout:g} s (last: {last}).\n"
        f"{server.log_tail()}"
    )


# -- reporting ---------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated between the closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A Markdown table: the first `left` columns (names) left-aligned, numbers right."""
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * w if i < left else "-" * (w - 1) + ":" for i, w in enumerate(widths)]
    return "\n".join([line(header), "| " + " | ".join(rule) + " |", *(line(r) for r in rows)])


def times(factor: float) -> str:
    return f"{factor:.2f}×"  # noqa: RUF001  (the multiplication sign is meant)


def ratio(value: float, base: float) -> str:
    return times(value / base) if base else "n/a"


def machine() -> str:
    """One line of context to print above a table: noise is part of every number."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
        f"load average {load}, {time.strftime('%Y-%m-%d %H:%M %Z')}, commit {_commit()}"
    )


def _commit() -> str:
    """The tree measured; "+changes" when it differs from that commit."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "functions"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'none'}{'+changes' if dirty else ''}"


def add_contender_options(parser: argparse.ArgumentParser) -> None:
    """The options every side-by-side benchmark takes."""
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds a server may take to start (60)"
    )
    parser.add_argument(
        "--otlp",
        action="store_true",
        help="add a row: kshop exporting its spans over OTLP/HTTP to a loopback sink",
    )
    parser.add_argument(
        "--python", type=Path, default=PYTHON, help=f"the interpreter for all (default {PYTHON})"
    )


def tool(name: str) -> str:
    """A load generator: on PATH, or where scripts/bootstrap builds Go tools."""
    found = shutil.which(name) or shutil.which(name, path=str(tools_dir()))
    if found is None:
        raise BenchError(f"{name} not found; scripts/bootstrap test installs it")
    return found


def logdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"kshop-{prefix}-"))


@contextlib.contextmanager
def run_logs(prefix: str) -> Iterator[Path]:
    """A directory for the servers' logs, kept and named when the run fails, else removed."""
    logs = logdir(prefix)
    try:
        yield logs
    except (BenchError, OSError, subprocess.TimeoutExpired):
        print(f"logs kept in {logs}", file=sys.stderr)
        raise
    except BaseException:  # Ctrl-C, or SIGTERM's SystemExit
        shutil.rmtree(logs, ignore_errors=True)
        raise
    shutil.rmtree(logs, ignore_errors=True)


@contextlib.contextmanager
def exit_status() -> Iterator[None]:
    """End the script when a run cannot go on: status 1 with the reason, 130 on Ctrl-C.

    A BenchError, an OSError or a timed-out subprocess means a contender did not
    start or answer; its message says so, a traceback would not add to it. Inner
    context managers (servers, logs) have cleaned up by the time this runs.
    """
    try:
        yield
    except (BenchError, OSError, subprocess.TimeoutExpired) as error:
        print(f"\n{type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
