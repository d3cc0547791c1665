"""A kshop function that does nothing, so throughput measures the runtime alone.

Its handler is idempotent (the default), so every event still takes and
completes a lock in Redis, is measured in /metrics and gets a span.
BENCH_IDEMPOTENT=0 leaves the lock out, to show what it costs on its own.
"""

from __future__ import annotations

import os
from typing import Any

from functions.runtime import Event, Function
from functions.runtime.serve import run

function = Function("bench")


@function.on("bench.noop", idempotent=os.environ.get("BENCH_IDEMPOTENT") != "0")
async def noop(event: Event[Any]) -> None:
    return None


if __name__ == "__main__":
    run(function)
