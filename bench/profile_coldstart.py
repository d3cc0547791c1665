"""Where a kshop function's cold start goes: phases, imports, and what-if probes.

1. Phases, interleaved runs, medians: exec → listening (first answer to a
   liveness GET) → first 2xx to a CloudEvent, with the RSS at each point,
   for kshop analytics, bare FastAPI and func-python.
2. `python -X importtime` of the kshop serve path up to the first answered
   event, summed per top-level package (median over runs), split at the
   runtime's "ready" log line into start-up and first-event imports, and
   marked with whether bare FastAPI imports the package too.
3. Probes: one import each in a fresh interpreter (median over runs), timed
   in-process and with its RSS increase, to price the suggestions.

    .venv/bin/python bench/profile_coldstart.py [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # after the path above: run as a script, not a module
    FASTAPI,
    FUNC_PYTHON,
    HOST,
    MIB,
    POLL_INTERVAL,
    PYTHON,
    ROOT,
    BenchError,
    Contender,
    Server,
    exit_status,
    first_answer,
    kshop_analytics,
    machine,
    markdown_table,
    median,
    redis_server,
    rss_tree,
    run_logs,
    terminate_on_sigterm,
)

EVENT_TYPE = "kshop.order.completed"
LIVENESS = {"kshop": "/health/live", "fastapi": "/", "func-python": "/health/liveness"}
READY_MARK = '"message": "ready"'  # the runtime's JSON log line at the end of start-up

_OTEL_API = "import opentelemetry.trace, opentelemetry.trace.propagation.tracecontext"
_SERVER = "import uvicorn, uvloop, httptools"
_WSPROTO = "import uvicorn.protocols.websockets.auto"

# Ladders: what each contender loads, step by step in one fresh interpreter, so the
# increments add up and each shared dependency is charged to the first step needing it.
LADDERS: dict[str, list[tuple[str, str]]] = {
    "kshop analytics": [
        ("uvicorn, uvloop, httptools", _SERVER),
        ("wsproto (uvicorn ws='auto' finds it)", _WSPROTO),
        ("pydantic, one model", "from pydantic import BaseModel\nclass M(BaseModel): x: int"),
        (
            "pydantic_settings, one settings class",
            "from pydantic_settings import BaseSettings\nclass S(BaseSettings): x: int = 0",
        ),
        ("cloudevents HTTP binding", "import cloudevents.core.bindings.http"),
        ("prometheus_client", "import prometheus_client"),
        ("opentelemetry API, trace propagator", _OTEL_API),
        (
            "kshop runtime and analytics, the rest",
            "import functions.runtime.serve, functions.analytics.main",
        ),
        (
            "first event: redis.asyncio, as clients.redis() imports it",
            "import functions.runtime.clients as c\nc.redis()",
        ),
    ],
    "bare FastAPI": [
        ("uvicorn, uvloop, httptools", _SERVER),
        ("wsproto (uvicorn ws='auto' finds it)", _WSPROTO),
        (
            "fastapi, an app with one route",
            "from fastapi import FastAPI\napp = FastAPI()\n"
            "@app.post('/')\nasync def f() -> None: pass",
        ),
    ],
    "func-python": [
        ("func_python.cloudevent (hypercorn, cloudevents)", "import func_python.cloudevent")
    ],
}

# What-ifs: (label, set-up not counted, statement), each in a fresh interpreter.
WHAT_IFS: list[tuple[str, str, str]] = [
    (
        "import redis.asyncio plainly (after the runtime)",
        "import functions.runtime.serve",
        "import redis.asyncio",
    ),
    (
        "redis.asyncio as clients.redis() imports it (OTel metrics SDK hidden)",
        "import functions.runtime.serve, functions.runtime.clients as c",
        "c.redis()",
    ),
    (
        "tracing.provider(), with an exporter only: SDK + TracerProvider + Resource",
        "import functions.runtime.tracing as t",
        "t.provider()",
    ),
    (
        "settings(): pydantic-settings reads the environment",
        "import functions.runtime.settings as s",
        "s.settings()",
    ),
    ("import wsproto alone (after uvicorn)", "import uvicorn", "import wsproto"),
    (
        "OTLP exporter, imported only when OTEL_EXPORTER_OTLP_ENDPOINT is set",
        "import functions.runtime.serve, opentelemetry.sdk.trace",
        "import opentelemetry.exporter.otlp.proto.http.trace_exporter",
    ),
]

_RSS = """
import time
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
"""


@dataclass(frozen=True)
class Phases:
    listening: float
    first: float
    rss_listening: int
    rss_first: int


def first_http(server: Server, path: str, timeout: float) -> float:
    """The perf_counter time of the first HTTP answer of any status to GET path."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        server.check_alive()
        connection = http.client.HTTPConnection(HOST, server.port, timeout=timeout)
        try:
            connection.request("GET", path)
            connection.getresponse().read()
            return time.perf_counter()
        except (ConnectionError, http.client.HTTPException, TimeoutError):
            time.sleep(POLL_INTERVAL)
        finally:
            connection.close()
    raise BenchError(f"{server.contender.label} did not listen within {timeout:g} s")


def phases(contender: Contender, redis_url: str, logs: Path, timeout: float) -> Phases:
    server = Server(contender, redis_url, logs)
    try:
        started = server.start()
        listening = first_http(server, LIVENESS[contender.key], timeout)
        rss_listening = rss_tree(server.pid)
        answered, _ = first_answer(server, EVENT_TYPE, timeout)
        return Phases(
            listening - started, answered - listening, rss_listening, rss_tree(server.pid)
        )
    finally:
        server.stop()


def import_profile(
    contender: Contender, redis_url: str, logs: Path, timeout: float
) -> tuple[Counter[str], Counter[str]]:
    """Self time in µs per top-level package: (before "ready", after it)."""
    traced = replace(contender, argv=("-X", "importtime", *contender.argv))
    server = Server(traced, redis_url, logs)
    try:
        server.start()
        first_answer(server, EVENT_TYPE, timeout)
        time.sleep(0.2)  # let the log reach the file
    finally:
        server.stop()
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    phase = before
    for line in server.log.read_text(errors="replace").splitlines():
        if READY_MARK in line:
            phase = after
        if not line.startswith("import time:"):
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        if self_us.strip().isdigit():
            phase[name.strip().split(".")[0]] += int(self_us)
    return before, after


def python_lines(code: str, python: Path) -> list[list[str]]:
    done = subprocess.run(
        [str(python), "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise BenchError(f"probe failed: {done.stderr.strip()[-800:]}\n{code}")
    return [line.split() for line in done.stdout.splitlines()]


def ladder(steps: list[tuple[str, str]], python: Path) -> list[tuple[float, int]]:
    """(seconds, RSS in bytes after it) per step; the first entry is the bare interpreter."""
    code = _RSS + "print(0.0, rss())\n"
    for _, statement in steps:
        code += f"t0 = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t0, rss())\n"
    return [(float(t), int(r)) for t, r in python_lines(code, python)]


def what_if(setup: str, statement: str, python: Path) -> tuple[float, int]:
    """(seconds, RSS added) of statement alone, after setup."""
    code = _RSS + f"{setup}\nr0 = rss(); t0 = time.perf_counter()\n{statement}\n"
    code += "print(time.perf_counter() - t0, rss() - r0)\n"
    ((seconds, grown),) = python_lines(code, python)
    return float(seconds), int(grown)


def main() -> int:
    parser = argparse.ArgumentParser(description="Profile the cold start of a kshop function.")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    parser.add_argument("--quick", action="store_true", help="1 run each: a sanity check")
    parser.add_argument("--top", type=int, default=20, help="packages to list (default 20)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to start (60)")
    args = parser.parse_args()
    runs = 1 if args.quick else max(1, args.runs)
    terminate_on_sigterm()

    kshop = kshop_analytics()
    contenders = [kshop, FASTAPI, FUNC_PYTHON]
    measured: dict[str, list[Phases]] = {c.key: [] for c in contenders}
    starts: list[Counter[str]] = []
    firsts: list[Counter[str]] = []
    bare: list[Counter[str]] = []
    ladders: dict[str, list[list[tuple[float, int]]]] = {name: [] for name in LADDERS}
    what_ifs: dict[str, list[tuple[float, int]]] = {label: [] for label, _, _ in WHAT_IFS}
    with exit_status(), run_logs("profile") as logs, redis_server() as redis:
        for c in contenders:  # warm-up, untimed
            phases(c, redis.url, logs, args.timeout)
        for _ in range(runs):  # every kind of measurement once per round: drift hits all
            for c in contenders:
                measured[c.key].append(phases(c, redis.url, logs, args.timeout))
            before, after = import_profile(kshop, redis.url, logs, args.timeout)
            starts.append(before)
            firsts.append(after)
            bare_before, bare_after = import_profile(FASTAPI, redis.url, logs, args.timeout)
            bare.append(bare_before + bare_after)
            for name, steps in LADDERS.items():
                ladders[name].append(ladder(steps, PYTHON))
            for label, setup, statement in WHAT_IFS:
                what_ifs[label].append(what_if(setup, statement, PYTHON))

    print(f"Cold-start profile, median of {runs} run(s); {machine()}\n")
    print("Phases (exec → listening → first 2xx to a CloudEvent):\n")
    rows = []
    for c in contenders:
        m = measured[c.key]
        rows.append(
            [
                c.label,
                f"{median([p.listening for p in m]) * 1000:.0f} ms",
                f"{median([p.first for p in m]) * 1000:.0f} ms",
                f"{median([p.listening + p.first for p in m]) * 1000:.0f} ms",
                f"{median([p.rss_listening for p in m]) / MIB:.1f} MiB",
                f"{median([p.rss_first for p in m]) / MIB:.1f} MiB",
            ]
        )
    header = ["contender", "to listening", "then first event", "total", "RSS listening"]
    print(markdown_table([*header, "RSS after event"], rows))

    def med_ms(samples: list[Counter[str]], package: str) -> float:
        return statistics.median([s[package] for s in samples]) / 1000

    def total_ms(samples: list[Counter[str]]) -> str:
        return f"{statistics.median([sum(s.values()) for s in samples]) / 1000:.0f}"

    packages = {p for s in (*starts, *firsts) for p in s}
    ranked = sorted(packages, key=lambda p: -(med_ms(starts, p) + med_ms(firsts, p)))
    print("\nkshop imports per top-level package, self ms under -X importtime (inflated by it):\n")
    rows = [
        [p, f"{med_ms(starts, p):.1f}", f"{med_ms(firsts, p):.1f}", f"{med_ms(bare, p):.1f}"]
        for p in ranked[: args.top]
    ]
    rows.append(["all packages", total_ms(starts), total_ms(firsts), total_ms(bare)])
    header = ["package", "kshop start-up", "kshop first event", "bare FastAPI (all)"]
    print(markdown_table(header, rows))

    print("\nWhat each contender loads, step by step in one interpreter (time, RSS added):\n")
    rows = []
    for name, steps in LADDERS.items():
        runs_of = ladders[name]
        base = median([r[0][1] for r in runs_of])
        rows.append([name, "interpreter", "", "", f"{base / MIB:.1f} MiB"])
        for i, (label, _) in enumerate(steps, start=1):
            added = median([r[i][1] - r[i - 1][1] for r in runs_of])
            rows.append(
                [
                    "",
                    label,
                    f"{median([r[i][0] for r in runs_of]) * 1000:.0f} ms",
                    f"{added / MIB:+.1f} MiB",
                    f"{median([r[i][1] for r in runs_of]) / MIB:.1f} MiB",
                ]
            )
    print(markdown_table(["contender", "step", "time", "RSS added", "RSS"], rows, left=2))

    print("\nWhat-ifs (fresh interpreter each; the statement alone):\n")
    rows = [
        [
            label,
            f"{median([t for t, _ in what_ifs[label]]) * 1000:.0f} ms",
            f"{median([g for _, g in what_ifs[label]]) / MIB:+.1f} MiB",
        ]
        for label, _, _ in WHAT_IFS
    ]
    print(markdown_table(["statement", "time", "RSS added"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
