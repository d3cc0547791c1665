"""`kshop dev` run as a user runs it: a subprocess on free ports, and ways to watch it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

KSHOP = str(Path(sys.executable).with_name("kshop"))
T = TypeVar("T")
# What the shell of a user who never configured kshop has.
UNSET = ("REDIS_URL", "MONGODB_URL", "JWT_SECRET", "K_SINK", "KSHOP_TOPOLOGY", "KSHOP_TOKEN")


def eventually(check: Callable[[], T | None], timeout: float = 30, what: str = "it") -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.2)


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> set[int]:
    """Every live process below root, whatever session or group it moved to."""
    parents = {
        int(p.name): _parent(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()
    }
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(
        entry.decode(errors="replace").split("=", 1) for entry in raw.split(b"\0") if b"=" in entry
    )


@dataclass
class Dev:
    """A running `kshop dev` and the directory a user would run it in."""

    process: subprocess.Popen[bytes]
    cwd: Path
    log: Path
    env: dict[str, str]
    _token: str = field(default="", repr=False)

    @property
    def endpoints(self) -> dict[str, Any]:
        return dict(json.loads((self.cwd / ".kshop" / "endpoints.json").read_text()))

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kshop(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KSHOP, *args],
            cwd=self.cwd,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def get(self, function: str, path: str, **params: str) -> Any:
        """A function's API, with a token that `kshop token` minted."""
        if not self._token:
            minted = self.kshop("token", "--sub", "e2e", "--permissions", "analytics:read,dlq:read")
            assert minted.returncode == 0, minted.stderr
            self._token = minted.stdout.strip()
        response = httpx.get(
            f"{self.endpoints['functions'][function]}{path}",
            params=params,
            headers={"authorization": f"Bearer {self._token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def summary(self) -> dict[str, int]:
        """Today's event counts by type."""
        return dict(self.get("analytics", "/analytics/summary")["days"][-1]["events"])

    def dead_letters(self, event_type: str) -> list[dict[str, Any]]:
        return list(self.get("deadletter", "/deadletter/events", type=event_type)["items"])


def start_dev(cwd: Path, env: dict[str, str], *args: str) -> Dev:
    cwd.mkdir(parents=True, exist_ok=True)
    log = cwd / "kshop-dev.log"
    with log.open("wb") as out:
        # A session of its own, as a terminal gives a foreground job: SIGINT to its
        # group is the user's Ctrl-C, and reaches nothing else.
        process = subprocess.Popen(
            # Port 0: every port is the OS's choice, read back from the endpoints file.
            [KSHOP, "dev", "--port", "0", "--base-port", "0", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dev = Dev(process, cwd, log, env)
    endpoints = cwd / ".kshop" / "endpoints.json"

    def started() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"kshop dev exited with {process.returncode}:\n{dev.output()}")
        return endpoints.exists()

    try:
        eventually(started, timeout=90, what="kshop dev's endpoints file")
    except BaseException:
        stop_dev(dev)
        raise
    return dev


def stop_dev(dev: Dev) -> None:
    """Ctrl-C, and whatever is left after that is killed: no test leaves a process behind."""
    left = descendants(dev.process.pid)
    if dev.process.poll() is None:
        os.killpg(dev.process.pid, signal.SIGINT)
        try:
            dev.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(dev.process.pid, signal.SIGKILL)
            dev.process.wait()
    for pid in left:
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def user_env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in UNSET} | extra
