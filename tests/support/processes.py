"""Functions served as real processes, the way Knative runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str

    def output(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")


@contextmanager
def serve(
    args: list[str], port: int, env: Mapping[str, str], timeout: float = 30
) -> Iterator[Served]:
    """Start `python ARGS` with PORT set, wait until /health/live answers, stop it after."""
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env, "PORT": str(port), "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    served = Served(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{args} exited early:\n{served.output()}")
            try:
                if httpx.get(f"{served.url}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{args} did not start in {timeout} s")
            time.sleep(0.05)
        yield served
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
