"""Clients are made on first use, and cost a function's cold start only what they must."""

import subprocess
import sys

PROBE = """
import sys
from functions.runtime import clients
assert "redis" not in sys.modules, "importing the runtime must not import redis"
clients.redis()
assert "redis.asyncio" in sys.modules
assert "opentelemetry.sdk.metrics" not in sys.modules, "redis-py loaded the metrics SDK"
import opentelemetry.sdk.metrics  # still importable by anyone who wants it
print("ok")
"""


def test_redis_is_imported_on_first_use_without_the_otel_metrics_sdk() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
