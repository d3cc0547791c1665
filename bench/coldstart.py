"""Cold start: from exec to the first 2xx answer to a CloudEvent, and the RSS then.

Three contenders, run interleaved (A, B, C, A, B, C, ...) so that the machine's
drift hits all of them alike:

- kshop analytics, every runtime feature on: idempotency on a real Redis,
  metrics, tracing and JSON logs (the `python -m functions` path);
- a bare FastAPI app on uvicorn that answers 202;
- a func-python function that answers 202.

Each run execs a fresh interpreter, then POSTs a new binary-mode CloudEvent
every 5 ms until one gets a 2xx; the time is taken from just before the exec,
and the RSS (the process and any children) right after that answer. One
untimed warm-up run per contender first, so every run finds its bytecode
compiled and its files in the page cache, as a restarted pod would.

    .venv/bin/python bench/coldstart.py [--runs 15] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # after the path above: run as a script, not a module
    FASTAPI,
    FUNC_PYTHON,
    MIB,
    Contender,
    Server,
    add_contender_options,
    contenders,
    exit_status,
    first_answer,
    kshop_analytics,
    machine,
    markdown_table,
    median,
    otlp_sink,
    percentile,
    ratio,
    redis_server,
    rss_tree,
    run_logs,
    terminate_on_sigterm,
    times,
)

EVENT_TYPE = "kshop.order.completed"
GOAL = 1.10


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss: int
    status: int


def measure(
    contender: Contender, redis_url: str, logs: Path, timeout: float, python: Path
) -> Sample:
    server = Server(contender, redis_url, logs, python)
    try:
        started = server.start()
        answered, status = first_answer(server, EVENT_TYPE, timeout)
        # Read before anything else runs: this is the memory it took to answer.
        rss = rss_tree(server.pid)
    finally:
        server.stop()  # SIGKILL: the next run should not share the CPU with a shutdown
    return Sample(answered - started, rss, status)


def table(contenders: list[Contender], samples: dict[str, list[Sample]]) -> str:
    def med_time(key: str) -> float:
        return median([s.seconds for s in samples[key]])

    def med_rss(key: str) -> float:
        return median([s.rss for s in samples[key]])

    rows = []
    for c in contenders:
        times = [s.seconds for s in samples[c.key]]
        rows.append(
            [
                c.label,
                c.server,
                str(len(times)),
                f"{med_time(c.key) * 1000:.0f} ms",
                f"{percentile(times, 90) * 1000:.0f} ms",
                f"{med_rss(c.key) / MIB:.1f} MiB",
                ratio(med_time(c.key), med_time(FASTAPI.key)),
                ratio(med_rss(c.key), med_rss(FASTAPI.key)),
                ratio(med_time(c.key), med_time(FUNC_PYTHON.key)),
                ratio(med_rss(c.key), med_rss(FUNC_PYTHON.key)),
            ]
        )
    header = [
        "contender",
        "served by",
        "runs",
        "median time",
        "p90 time",
        "median RSS",
        "time ÷ FastAPI",
        "RSS ÷ FastAPI",
        "time ÷ func-python",
        "RSS ÷ func-python",
    ]
    return markdown_table(header, rows, left=2)


def verdict(samples: dict[str, list[Sample]]) -> str:
    def med(key: str, attribute: str) -> float:
        return median([getattr(s, attribute) for s in samples[key]])

    lines = []
    for attribute, what in (("seconds", "time"), ("rss", "memory")):
        kshop, bare = med("kshop", attribute), med(FASTAPI.key, attribute)
        func_python = med(FUNC_PYTHON.key, attribute)
        met = "met" if kshop <= GOAL * bare else "missed"
        lines.append(
            f"- {what}: kshop is {times(kshop / bare)} bare FastAPI "
            f"(goal ≤ {times(GOAL)}: {met}) and {times(kshop / func_python)} func-python"
        )
    statuses = {k: sorted({s.status for s in v}) for k, v in samples.items()}
    lines.append(f"- first answers: {', '.join(f'{k} {v}' for k, v in statuses.items())}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Cold start of a kshop function vs bare FastAPI and func-python: "
        "time from exec to the first 2xx to a CloudEvent, and RSS at that moment.",
    )
    parser.add_argument("--runs", type=int, default=15, help="runs per contender (default 15)")
    parser.add_argument("--quick", action="store_true", help="3 runs: a sanity check, not a result")
    add_contender_options(parser)
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    if runs < 1:
        parser.error("--runs must be at least 1")
    terminate_on_sigterm()

    samples: dict[str, list[Sample]] = {}
    with (
        exit_status(),
        run_logs("coldstart") as logs,
        redis_server() as redis,
        otlp_sink() as otlp,
    ):
        every = contenders(kshop_analytics(), otlp if args.otlp else None)
        samples = {c.key: [] for c in every}
        for c in every:  # warm-up: compile bytecode, fill the page cache
            measure(c, redis.url, logs, args.timeout, args.python)
        for run in range(1, runs + 1):
            for c in every:
                sample = measure(c, redis.url, logs, args.timeout, args.python)
                samples[c.key].append(sample)
                print(
                    f"run {run}/{runs} {c.label}: {sample.seconds * 1000:.0f} ms, "
                    f"{sample.rss / MIB:.1f} MiB, HTTP {sample.status}",
                    file=sys.stderr,
                )

    print(f"\nCold start, {runs} interleaved runs each; {machine()}\n")
    print(table(every, samples))
    print()
    print(verdict(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
