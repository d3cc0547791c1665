"""Throughput and latency: warm servers, loopback, a no-op CloudEvent handler.

Three contenders (four with --otlp), all started once and warmed up, then
measured in rounds whose order rotates (ABC, BCA, CAB, ...) so drift does not
favour one:

- kshop: a no-op handler with idempotency on a real Redis, metrics and trace
  context on (bench/apps/noop_function.py, served by the runtime's app);
- a bare FastAPI app on uvicorn that answers 202;
- a func-python function that answers 202.

Each round has two parts, and every request is a binary-mode CloudEvent with
an id never sent before: with idempotency on, a repeated id would only measure
the duplicate path.

- Saturation (wrk, closed loop): a fixed number of keep-alive connections,
  each sending its next event as soon as the last is answered
  (bench/wrk_cloudevents.lua). It gives the most events a second a contender
  answers; its latencies are mostly time spent queueing at that limit.
- Latency at fixed rates (vegeta, open loop): events sent on a schedule, N a
  second whatever the answers, so a slow answer cannot hold the next request
  back and hide its own cost. This is the latency a caller sees at a given load.

The tables show, per contender, the median over rounds of each figure. Beside
the latencies: the CPU an answered event took in the server's processes and in
Redis (from /proc, so each contender's cost shows without a profiler), and the
share of the machine's CPU time the hypervisor stole during the run, the noise
behind most of a shared VM's tail. A run with more steal than --max-steal is
run again (up to --repeats times) and the least stolen attempt kept: such a run
measures the neighbours, and a p99 taken in it cannot decide a 2 ms goal.

    .venv/bin/python bench/throughput.py [--duration 10] [--rates 500,1000] [--quick]
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # after the path above: run as a script, not a module
    EVENT_BODY,
    FASTAPI,
    FUNC_PYTHON,
    HOST,
    BenchError,
    Contender,
    Meter,
    Server,
    Usage,
    add_contender_options,
    contenders,
    event_headers,
    exit_status,
    first_answer,
    kshop_noop,
    machine,
    markdown_table,
    median,
    otlp_sink,
    ratio,
    redis_server,
    run_logs,
    servers_cleanup,
    terminate_on_sigterm,
    tool,
)

EVENT_TYPE = "bench.noop"
LUA = Path(__file__).resolve().parent / "wrk_cloudevents.lua"
P99_BUDGET = 0.002  # seconds above bare FastAPI's p99


@dataclass(frozen=True)
class Cost:
    """CPU an answered event took, in the server and in Redis, and the machine's steal."""

    server: float  # seconds
    redis: float  # seconds
    steal: float  # share of the machine's CPU time

    @classmethod
    def of(cls, usage: Usage, answered: int) -> Cost:
        server, redis = usage.cpu
        return cls(server / answered, redis / answered, usage.steal)


def median_cost(costs: list[Cost]) -> Cost:
    return Cost(
        median([c.server for c in costs]),
        median([c.redis for c in costs]),
        median([c.steal for c in costs]),
    )


@dataclass(frozen=True)
class Round:
    requests: int
    seconds: float
    errors: int
    p50: float
    p99: float
    cost: Cost

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def load(server: Server, redis_pid: int, duration: float, connections: int, threads: int) -> Round:
    """One wrk run against a server; its figures, from the script's JSON line."""
    argv = [
        tool("wrk"),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={duration:g}s",
        # A request stuck longer than this counts as a timeout error, not as latency.
        "--timeout=2s",
        f"--script={LUA}",
        f"http://{HOST}:{server.port}/",
        "--",
        uuid.uuid4().hex[:12],
        EVENT_TYPE,
    ]
    meter = Meter(server.pid, redis_pid)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    usage = meter.stop()
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    server.check_alive()
    if result["requests"] <= errors:
        raise BenchError(
            f"{server.contender.label} answered no request with a 2xx.\n{server.log_tail()}"
        )
    return Round(
        requests=result["requests"],
        seconds=result["duration_us"] / 1e6,
        errors=errors,
        p50=result["p50_us"] / 1e6,
        p99=result["p99_us"] / 1e6,
        cost=Cost.of(usage, result["requests"] - errors),
    )


@dataclass(frozen=True)
class Summary:
    rate: float
    p50: float
    p99: float
    errors: int
    cost: Cost


def summarize(rounds: list[Round]) -> Summary:
    """The median of each figure over the rounds; errors are summed, not hidden."""
    return Summary(
        rate=median([r.rate for r in rounds]),
        p50=median([r.p50 for r in rounds]),
        p99=median([r.p99 for r in rounds]),
        errors=sum(r.errors for r in rounds),
        cost=median_cost([r.cost for r in rounds]),
    )


@dataclass(frozen=True)
class Paced:
    """One open-loop run: events sent on a fixed schedule, whatever the answers."""

    achieved: float  # 2xx answers a second
    p50: float
    p99: float
    slowest: float
    errors: int
    cost: Cost


def paced(server: Server, redis_pid: int, rate: int, duration: float, workdir: Path) -> Paced:
    """One vegeta run at `rate` events a second, each event new."""
    vegeta = tool("vegeta")
    targets, results = workdir / "targets.jsonl", workdir / "results.bin"
    body = base64.b64encode(EVENT_BODY).decode()
    with targets.open("w") as out:
        for _ in range(int(rate * duration) + rate):  # a spare second: no id is sent twice
            headers = event_headers(EVENT_TYPE)
            target = {
                "method": "POST",
                "url": f"http://{HOST}:{server.port}/",
                "header": {name: [value] for name, value in headers.items()},
                "body": body,
            }
            out.write(json.dumps(target) + "\n")
    attack = [
        vegeta,
        "attack",
        "-format=json",
        f"-targets={targets}",
        f"-rate={rate}/1s",
        f"-duration={duration:g}s",
        "-timeout=2s",
        f"-output={results}",
    ]
    meter = Meter(server.pid, redis_pid)
    _vegeta(attack, duration)
    usage = meter.stop()
    report = json.loads(_vegeta([vegeta, "report", "-type=json", str(results)], duration))
    server.check_alive()
    answered = sum(n for code, n in report["status_codes"].items() if code.startswith("2"))
    if not answered:
        raise BenchError(
            f"{server.contender.label} answered no request with a 2xx.\n{server.log_tail()}"
        )
    latencies = report["latencies"]
    return Paced(
        achieved=report["throughput"],
        p50=latencies["50th"] / 1e9,
        p99=latencies["99th"] / 1e9,
        slowest=latencies["max"] / 1e9,
        errors=report["requests"] - answered,
        cost=Cost.of(usage, answered),
    )


def _vegeta(argv: list[str], duration: float) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    if done.returncode != 0:
        raise BenchError(f"vegeta failed ({done.returncode}): {done.stderr}")
    return done.stdout


class Measured(Protocol):
    @property
    def cost(self) -> Cost: ...


M = TypeVar("M", bound=Measured)


def steady(measure: Callable[[], M], max_steal: float, repeats: int) -> tuple[M, int]:
    """A run, repeated while the hypervisor stole more than `max_steal` of the machine.

    Returns the least stolen attempt and how many repeats it took. The choice
    looks at steal only, never at the figures themselves.
    """
    attempts = [measure()]
    while attempts[-1].cost.steal > max_steal and len(attempts) <= repeats:
        attempts.append(measure())
    return min(attempts, key=lambda a: a.cost.steal), len(attempts) - 1


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# Latency tracks CPU per event (a busier process drains a backlog more slowly),
# and steal shows what the machine itself took away during the runs.
COST_HEADER = ["CPU/event", "Redis CPU/event", "steal"]


def cost_cells(cost: Cost) -> list[str]:
    return [f"{cost.server * 1e6:,.0f} µs", f"{cost.redis * 1e6:,.0f} µs", f"{cost.steal:.1%}"]


def saturation_table(every: list[Contender], results: dict[str, Summary]) -> str:
    bare, func_python = results[FASTAPI.key], results[FUNC_PYTHON.key]
    rows = [
        [
            c.label,
            c.server,
            f"{results[c.key].rate:,.0f}",
            ms(results[c.key].p50),
            ms(results[c.key].p99),
            str(results[c.key].errors),
            ratio(results[c.key].rate, bare.rate),
            ratio(results[c.key].rate, func_python.rate),
            *cost_cells(results[c.key].cost),
        ]
        for c in every
    ]
    header = [
        "contender",
        "served by",
        "req/s",
        "p50",
        "p99",
        "errors",
        "req/s ÷ FastAPI",
        "req/s ÷ func-python",
        *COST_HEADER,
    ]
    return markdown_table(header, rows, left=2)


def latency_table(every: list[Contender], results: dict[int, dict[str, list[Paced]]]) -> str:
    rows = []
    for rate, by_contender in results.items():
        bare_p99 = median([r.p99 for r in by_contender[FASTAPI.key]])
        for c in every:
            runs = by_contender[c.key]
            p99 = median([r.p99 for r in runs])
            rows.append(
                [
                    f"{rate:,}/s",
                    c.label,
                    f"{median([r.achieved for r in runs]):,.0f}",
                    ms(median([r.p50 for r in runs])),
                    ms(p99),
                    ms(median([r.slowest for r in runs])),
                    str(sum(r.errors for r in runs)),
                    f"{(p99 - bare_p99) * 1000:+.2f} ms",
                    *cost_cells(median_cost([r.cost for r in runs])),
                ]
            )
    header = [
        "offered",
        "contender",
        "2xx/s",
        "p50",
        "p99",
        "max",
        "errors",
        "p99 vs FastAPI's",
        *COST_HEADER,
    ]
    return markdown_table(header, rows, left=2)


def verdict(
    saturation: dict[str, Summary], latency: dict[int, dict[str, list[Paced]]]
) -> tuple[str, bool]:
    kshop, func_python = saturation["kshop"], saturation[FUNC_PYTHON.key]
    rate_met = kshop.rate >= func_python.rate
    lines = [
        f"- req/s: kshop {kshop.rate:,.0f} vs func-python {func_python.rate:,.0f} "
        f"(goal: at least func-python's: {'met' if rate_met else 'missed'})"
    ]
    met = rate_met
    for rate, by_contender in latency.items():
        ours = median([r.p99 for r in by_contender["kshop"]])
        bare = median([r.p99 for r in by_contender[FASTAPI.key]])
        p99_met = ours <= bare + P99_BUDGET
        met = met and p99_met
        lines.append(
            f"- p99 at {rate:,} events/s: kshop {ms(ours)} vs bare FastAPI {ms(bare)} "
            f"(goal: at most {P99_BUDGET * 1000:g} ms above: {'met' if p99_met else 'missed'})"
        )
    return "\n".join(lines), met


def rates(text: str) -> list[int]:
    values = [int(x) for x in text.split(",") if x.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Requests/s and latency of a warm no-op CloudEvent handler: kshop "
        "(idempotency on Redis, metrics, trace context) vs bare FastAPI and func-python.",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up each (3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown (3)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (32)")
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (1: leaves the other core to servers)"
    )
    parser.add_argument(
        "--rates",
        type=rates,
        default=[500, 1000],
        help="events/s for the open-loop latency runs (500,1000)",
    )
    parser.add_argument(
        "--paced-duration", type=float, default=10.0, help="seconds per vegeta run (10)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 round of 2 s after 1 s of warm-up, one rate: a sanity check",
    )
    parser.add_argument(
        "--max-steal",
        type=float,
        default=2.0,
        help="%% of the machine's CPU the hypervisor may steal during a run before it is "
        "repeated (2)",
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="most repeats of one run for steal (2)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 2 when kshop misses a goal, not just report it"
    )
    add_contender_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.rounds, args.repeats = 2.0, 1.0, 1, 0
        args.rates, args.paced_duration = args.rates[:1], 2.0
    if (
        args.rounds < 1
        or args.duration <= 0
        or args.paced_duration <= 0
        or args.repeats < 0
        or not 1 <= args.threads <= args.connections
    ):
        parser.error(
            "need --rounds >= 1, --repeats >= 0, --duration and --paced-duration > 0 "
            "and 1 <= --threads <= --connections"
        )
    max_steal = args.max_steal / 100
    terminate_on_sigterm()

    every: list[Contender] = []
    saturated: dict[str, list[Round]] = {}
    latency: dict[int, dict[str, list[Paced]]] = {}
    repeated = 0
    with (
        exit_status(),
        run_logs("throughput") as logs,
        redis_server() as redis,
        otlp_sink() as otlp,
        servers_cleanup() as started,
    ):
        every = contenders(kshop_noop(), otlp if args.otlp else None, unlocked=True)
        saturated = {c.key: [] for c in every}
        latency = {rate: {c.key: [] for c in every} for rate in args.rates}
        servers = [Server(c, redis.url, logs, args.python) for c in every]
        redis_pid = redis.pid
        assert redis_pid is not None, "redis_server() started it"
        for server in servers:
            started.append(server)
            server.start()
        for server in servers:
            first_answer(server, EVENT_TYPE, args.timeout)
            if args.warmup > 0:
                load(server, redis_pid, args.warmup, args.connections, args.threads)
        for number in range(args.rounds):
            # Rotate the order each round: no contender always runs first or last.
            order = servers[number % len(servers) :] + servers[: number % len(servers)]
            for server in order:
                result, repeats = steady(
                    partial(load, server, redis_pid, args.duration, args.connections, args.threads),
                    max_steal,
                    args.repeats,
                )
                saturated[server.contender.key].append(result)
                repeated += repeats
                print(
                    f"round {number + 1}/{args.rounds} {server.contender.label}: "
                    f"{result.rate:,.0f} req/s, p99 {ms(result.p99)}, {result.errors} errors, "
                    f"steal {result.cost.steal:.1%} ({repeats} repeats)",
                    file=sys.stderr,
                )
            for rate in args.rates:
                for server in order:
                    run, repeats = steady(
                        partial(paced, server, redis_pid, rate, args.paced_duration, logs),
                        max_steal,
                        args.repeats,
                    )
                    latency[rate][server.contender.key].append(run)
                    repeated += repeats
                    print(
                        f"round {number + 1}/{args.rounds} {server.contender.label} at "
                        f"{rate}/s: p50 {ms(run.p50)}, p99 {ms(run.p99)}, "
                        f"{run.errors} errors, steal {run.cost.steal:.1%} ({repeats} repeats)",
                        file=sys.stderr,
                    )

    summaries = {key: summarize(value) for key, value in saturated.items()}
    print(f"\nThroughput and latency, median of {args.rounds} round(s); {machine()}\n")
    print(
        f"Runs repeated because the hypervisor stole more than {args.max_steal:g} % of the "
        f"machine's CPU: {repeated} (up to {args.repeats} a run; the least stolen kept)\n"
    )
    print(
        f"Saturation: wrk, {args.connections} connections, {args.threads} thread(s), "
        f"{args.duration:g} s a run\n"
    )
    print(saturation_table(every, summaries))
    print(f"\nLatency at fixed rates: vegeta, open loop, {args.paced_duration:g} s a run\n")
    print(latency_table(every, latency))
    print()
    text, met = verdict(summaries, latency)
    print(text)
    return 2 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
