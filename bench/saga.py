"""The order saga's throughput and latency, with every function warm, and where the time goes.

Every function of the saga runs as its own process (as `kshop dev` runs them),
with the dev broker, a real MongoDB-wire server, Redis and SMTP. Orders arrive
open-loop at a fixed rate; each is timed from just before its POST /orders to
its terminal status (the `at` of the last history entry, same clock). Reported:

- orders/s: orders that ended, over the time from the first POST to the last end;
- p50/p99 POST -> terminal, and how many orders never ended (lost);
- the profile: each hop's share of an order's time (from the order histories),
  and the CPU each process burned during the run (from /proc), which shows the
  component that limits throughput.

    .venv/bin/python bench/saga.py [--rate 150] [--orders 600] [--quick]

REDIS_URL and MONGODB_URL point it at running servers; otherwise it starts its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import logdir, machine, markdown_table, median, percentile
from functions.dev.services import MongoServer, RedisServer
from functions.orders.store import orders as order_collection
from tests.support.shop_stack import Shop, running_shop

NAMES = ("orders", "inventory", "payments", "shipping", "notifications", "analytics", "deadletter")
SKUS = ("alpha", "beta", "gamma", "delta")
HOPS = (("PENDING", "RESERVED"), ("RESERVED", "PAID"), ("PAID", "COMPLETED"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


async def place(
    shop: Shop, customers: list[dict[str, str]], n: int, started: dict[str, float]
) -> bool:
    """POST one order; whether orders accepted it (a refused or broken POST is counted)."""
    sku = SKUS[n % len(SKUS)]
    body = {"items": [{"sku": sku, "quantity": 1}], "paymentToken": "tok_visa"}
    t0 = time.time()
    try:
        response = await shop.stack.http("orders").post(
            "/orders", json=body, headers=customers[n % len(customers)]
        )
    except httpx.HTTPError:
        return False
    if response.status_code != 201:
        return False
    started[response.json()["id"]] = t0
    return True


async def wave(
    shop: Shop, customers: list[dict[str, str]], rate: float, count: int
) -> dict[str, float]:
    """POST `count` orders at `rate` per second, open loop; each order's POST time."""
    started: dict[str, float] = {}
    tasks = []
    begin = time.monotonic()
    for n in range(count):
        await asyncio.sleep(max(0.0, begin + n / rate - time.monotonic()))
        tasks.append(asyncio.create_task(place(shop, customers, n, started)))
    accepted = await asyncio.gather(*tasks)
    refused = len(accepted) - sum(accepted)
    if refused:
        print(f"{refused} of {count} POST /orders failed")
    return started


async def ended(ids: set[str], within: float) -> dict[str, dict[str, Any]]:
    """The orders' documents once every one is terminal, or when time is up."""
    deadline = time.monotonic() + within
    while True:
        found = {
            o["_id"]: o
            async for o in order_collection().find({"_id": {"$in": sorted(ids)}}, {"outbox": 0})
        }
        done = {i: o for i, o in found.items() if o["status"] in ("COMPLETED", "CANCELLED")}
        if len(done) == len(ids) or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.5)


def hop_times(orders: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    spans: dict[str, list[float]] = defaultdict(list)
    for order in orders.values():
        at = {step["status"]: step["at"] for step in order["history"]}
        for a, b in HOPS:
            if a in at and b in at:
                spans[f"{a} -> {b}"].append((at[b] - at[a]).total_seconds())
    return spans


async def run(
    args: argparse.Namespace, redis_url: str, mongodb_url: str, mongo_pid: int | None
) -> int:
    workdir = logdir("saga")
    overrides = {"LOG_LEVEL": "WARNING", "ORDER_DEADLINE_SECONDS": "300"}
    async with running_shop(redis_url, mongodb_url, workdir, NAMES, overrides) as shop:
        await shop.products(**{sku: 1_000_000 for sku in SKUS})
        customers = [await shop.customer(f"Bench{i}") for i in range(10)]
        warm = await wave(shop, customers, 20, 40)
        await ended(set(warm), 60)

        pids = {name: p.popen.pid for name, p in shop.stack.processes.items() if p.popen}
        if mongo_pid:
            pids["mongodb-wire"] = mongo_pid
        pids["broker + load (this process)"] = os.getpid()
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        t_first = time.time()
        started = await wave(shop, customers, args.rate, args.orders)
        done = await ended(set(started), args.timeout)
        window = time.time() - t_first
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}

    latencies = [
        (datetime.fromisoformat(done[i]["history"][-1]["at"].isoformat()).timestamp() - t0)
        for i, t0 in started.items()
        if i in done
    ]
    last_end = max((o["history"][-1]["at"].timestamp() for o in done.values()), default=t_first)
    throughput = len(done) / max(last_end - t_first, 1e-9)
    lost = len(started) - len(done)
    refused = args.orders - len(started)
    completed = sum(1 for o in done.values() if o["status"] == "COMPLETED")

    print(f"\nkshop order saga: {args.orders} orders offered at {args.rate:g}/s on {machine()}")
    print(f"mongodb-wire: {mongodb_url}; logs in {workdir}\n")
    rows = [
        ["orders/s (ended / first POST to last end)", f"{throughput:.1f}", "150"],
        ["p50 POST -> terminal", f"{median(latencies) * 1000:.0f} ms", ""],
        ["p99 POST -> terminal", f"{percentile(latencies, 99) * 1000:.0f} ms", "< 1000 ms"],
        ["completed / cancelled", f"{completed} / {len(done) - completed}", ""],
        ["POSTs refused or failed", str(refused), "0"],
        ["lost (accepted, not ended within timeout)", str(lost), "0"],
    ]
    print(markdown_table(["figure", "measured", "bar"], rows))

    print("\nWhere an order's time goes (from the order histories):\n")
    hops = hop_times(done)
    hop_rows = [
        [name, f"{median(v) * 1000:.0f} ms", f"{percentile(v, 99) * 1000:.0f} ms"]
        for name, v in hops.items()
    ]
    print(markdown_table(["hop", "p50", "p99"], hop_rows))

    print(f"\nCPU burned during the {window:.1f} s run, by process:\n")
    total = sum(cpu.values()) or 1.0
    cpu_rows = [
        [
            name,
            f"{seconds:.1f} s",
            f"{100 * seconds / total:.0f} %",
            f"{seconds / max(len(done), 1) * 1000:.1f} ms",
        ]
        for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])
    ]
    print(markdown_table(["process", "CPU", "share", "per order"], cpu_rows))
    return 0 if lost == 0 and refused == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=150.0, help="orders offered per second")
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the ends")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 60 orders at 30/s")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.orders = 30.0, 60
    with contextlib.ExitStack() as stack:
        redis_url = os.environ.get("REDIS_URL") or stack.enter_context(RedisServer()).url
        mongo_pid = None
        mongodb_url = os.environ.get("MONGODB_URL")
        if not mongodb_url:
            mongo = stack.enter_context(MongoServer())
            mongodb_url, mongo_pid = mongo.url, mongo.pid
        return asyncio.run(run(args, redis_url, mongodb_url, mongo_pid))


if __name__ == "__main__":
    sys.exit(main())
