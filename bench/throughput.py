"""Throughput: warm servers, loopback, a no-op CloudEvent handler under wrk.

Three contenders, all started once and warmed up, then measured in rounds
whose order rotates (ABC, BCA, CAB, ...) so drift does not favour one:

- kshop: a no-op handler with idempotency on a real Redis, metrics and
  tracing on (bench/apps/noop_function.py, served by the runtime's app);
- a bare FastAPI app on uvicorn that answers 202;
- a func-python function that answers 202.

wrk sends binary-mode CloudEvents over a fixed number of keep-alive
connections, each with an id never sent before (bench/wrk_cloudevents.lua):
with idempotency on, a repeated id would only measure the duplicate path.
The table shows, per contender, the median over rounds of each figure.

    .venv/bin/python bench/throughput.py [--duration 10] [--connections 32] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # after the path above: run as a script, not a module
    FASTAPI,
    FUNC_PYTHON,
    HOST,
    BenchError,
    Contender,
    Server,
    add_contender_options,
    fail,
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
    with_otlp,
)

EVENT_TYPE = "bench.noop"
LUA = Path(__file__).resolve().parent / "wrk_cloudevents.lua"
P99_BUDGET = 0.002  # seconds above bare FastAPI's p99


@dataclass(frozen=True)
class Round:
    requests: int
    seconds: float
    errors: int
    p50: float
    p99: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def load(server: Server, duration: float, connections: int, threads: int) -> Round:
    """One wrk run against a server; its figures, from the script's JSON line."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk not found; apt-get install wrk")
    argv = [
        wrk,
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
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
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
    )


@dataclass(frozen=True)
class Summary:
    rate: float
    p50: float
    p99: float
    errors: int


def summarize(rounds: list[Round]) -> Summary:
    """The median of each figure over the rounds; errors are summed, not hidden."""
    return Summary(
        rate=median([r.rate for r in rounds]),
        p50=median([r.p50 for r in rounds]),
        p99=median([r.p99 for r in rounds]),
        errors=sum(r.errors for r in rounds),
    )


def table(contenders: list[Contender], results: dict[str, Summary]) -> str:
    bare, func_python = results[FASTAPI.key], results[FUNC_PYTHON.key]
    rows = [
        [
            c.label,
            c.server,
            f"{results[c.key].rate:,.0f}",
            f"{results[c.key].p50 * 1000:.2f} ms",
            f"{results[c.key].p99 * 1000:.2f} ms",
            str(results[c.key].errors),
            ratio(results[c.key].rate, bare.rate),
            ratio(results[c.key].rate, func_python.rate),
            f"{(results[c.key].p99 - bare.p99) * 1000:+.2f} ms",
        ]
        for c in contenders
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
        "p99 vs FastAPI's",
    ]
    return markdown_table(header, rows, left=2)


def verdict(results: dict[str, Summary]) -> tuple[str, bool]:
    kshop, bare, func_python = results["kshop"], results[FASTAPI.key], results[FUNC_PYTHON.key]
    rate_met = kshop.rate >= func_python.rate
    p99_met = kshop.p99 <= bare.p99 + P99_BUDGET
    lines = [
        f"- req/s: kshop {kshop.rate:,.0f} vs func-python {func_python.rate:,.0f} "
        f"(goal: at least func-python's: {'met' if rate_met else 'missed'})",
        f"- p99: kshop {kshop.p99 * 1000:.2f} ms vs bare FastAPI {bare.p99 * 1000:.2f} ms "
        f"(goal: at most {P99_BUDGET * 1000:g} ms above: {'met' if p99_met else 'missed'})",
    ]
    return "\n".join(lines), rate_met and p99_met


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Requests/s and latency of a warm no-op CloudEvent handler: kshop "
        "(idempotency on Redis, metrics, tracing) vs bare FastAPI and func-python, under wrk.",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per round (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up each (3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown (3)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (32)")
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (1: leaves the other core to servers)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 round of 2 s after 1 s of warm-up: a sanity check"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 2 when kshop misses a goal, not just report it"
    )
    add_contender_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.rounds = 2.0, 1.0, 1
    if args.rounds < 1 or args.duration <= 0 or not 1 <= args.threads <= args.connections:
        parser.error("need --rounds >= 1, --duration > 0 and 1 <= --threads <= --connections")
    terminate_on_sigterm()

    contenders: list[Contender] = []
    rounds: dict[str, list[Round]] = {}
    try:
        with (
            run_logs("throughput") as logs,
            redis_server() as redis_url,
            otlp_sink() as otlp,
            servers_cleanup() as started,
        ):
            kshop = with_otlp(kshop_noop(), otlp) if args.otlp else kshop_noop()
            contenders = [kshop, FASTAPI, FUNC_PYTHON]
            rounds = {c.key: [] for c in contenders}
            servers = [Server(c, redis_url, logs, args.python) for c in contenders]
            for server in servers:
                started.append(server)
                server.start()
            for server in servers:
                first_answer(server, EVENT_TYPE, args.timeout)
                if args.warmup > 0:
                    load(server, args.warmup, args.connections, args.threads)
            for number in range(args.rounds):
                # Rotate the order each round: no contender always runs first or last.
                order = servers[number % len(servers) :] + servers[: number % len(servers)]
                for server in order:
                    result = load(server, args.duration, args.connections, args.threads)
                    rounds[server.contender.key].append(result)
                    print(
                        f"round {number + 1}/{args.rounds} {server.contender.label}: "
                        f"{result.rate:,.0f} req/s, p99 {result.p99 * 1000:.2f} ms, "
                        f"{result.errors} errors",
                        file=sys.stderr,
                    )
    except (BenchError, OSError, subprocess.TimeoutExpired) as error:
        return fail(error)
    except KeyboardInterrupt:
        return 130

    results = {key: summarize(value) for key, value in rounds.items()}
    print(
        f"\nThroughput, median of {args.rounds} round(s) of {args.duration:g} s, "
        f"{args.connections} connections, wrk {args.threads} thread(s); {machine()}\n"
    )
    print(table(contenders, results))
    print()
    text, met = verdict(results)
    print(text)
    return 2 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
