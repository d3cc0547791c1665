"""A function as a real process: settings at start, and graceful shutdown on SIGTERM."""

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest

from functions.dev.services import free_port
from functions.runtime import codec
from functions.runtime.testing import cloudevent
from tests.fixtures.services import ServiceEnv
from tests.support.processes import ROOT, serve
from tests.support.sample import Slow

pytestmark = pytest.mark.integration


def test_a_bad_setting_stops_the_start_with_one_line_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "functions"],
        cwd=ROOT,
        env={**os.environ, "FUNCTION": "analytics", "PORT": "eighty", "REDIS_URL": "http://x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kshop: invalid environment: PORT:")
    assert "REDIS_URL:" in line


def test_an_unknown_function_is_refused_at_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "functions"],
        cwd=ROOT,
        env={**os.environ, "FUNCTION": "nonesuch"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "nonesuch" in result.stderr


async def test_sigterm_fails_readiness_then_finishes_in_flight_work(
    service_env: ServiceEnv,
) -> None:
    env = {"SHUTDOWN_DELAY": "1", "REDIS_URL": service_env.redis_url}
    with serve(["tests/support/serve_sample.py"], free_port(), env) as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
            assert (await client.get("/health/ready")).status_code == 200
            headers, body = codec.encode(cloudevent(Slow(seconds=1.5)))
            in_flight = asyncio.create_task(client.post("/", headers=headers, content=body))
            await asyncio.sleep(0.3)
            served.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            # Still listening during SHUTDOWN_DELAY, but no longer ready.
            assert (await client.get("/health/ready")).status_code == 503
            assert (await in_flight).status_code == 202
        assert await asyncio.to_thread(served.process.wait, 10) == 0
