"""The image builds on the locally made base and runs a function the way Knative would.

No registry is reachable here, so scripts/base-image makes the base with
debootstrap once; podman's layer cache keeps rebuilds to the code layer.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from functions.dev.services import free_port
from tests.packaging.tools import REPO, VALUES, podman, podman_env, run

# The first run makes the base image and builds from scratch (1-3 minutes);
# pytest-timeout counts that setup against whichever test comes first.
pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

BASE_IMAGE = "localhost/python:3.11-bookworm"
IMAGE = "localhost/kshop:packaging-test"
# The image's user; the chart's securityContext must name the same one.
USER = "10001"
START_TIMEOUT = 30.0
# podman stop's default; Knative allows timeoutSeconds (60 s in values).
GRACE_SECONDS = 10.0
# What the image may add on top of its base: dependencies and code, no caches.
MAX_ADDED_MB = 150


def podman_run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run([podman(), *args], env=podman_env(), timeout=timeout)


@pytest.fixture(scope="session")
def image() -> str:
    podman()
    made = run(
        [REPO / "scripts" / "base-image"],
        env={**podman_env(), "KSHOP_BASE_IMAGE": BASE_IMAGE},
        timeout=600,
    )
    assert made.returncode == 0, f"scripts/base-image failed:\n{made.stderr}"
    built = podman_run(
        "build", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--tag", IMAGE, str(REPO), timeout=600
    )
    assert built.returncode == 0, (
        f"podman build failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}"
    )
    return IMAGE


def inspect(reference: str) -> dict[str, Any]:
    result = podman_run("image", "inspect", reference)
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)[0]
    return found


def test_the_image_runs_as_a_numeric_non_root_user_in_exec_form(image: str) -> None:
    config = inspect(image)["Config"]
    user, _, group = config["User"].partition(":")
    assert user == USER
    assert group.isdigit() and int(group) != 0
    security = VALUES["knativeService"]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (int(user), int(group))
    # Exec form: python is PID 1 and gets SIGTERM itself, with no shell in between.
    assert config["Cmd"] == ["python", "-m", "functions"]
    assert not config.get("Entrypoint")
    assert "PORT=8080" in config["Env"]


def test_the_final_stage_has_no_compilers_caches_or_build_tools(image: str) -> None:
    probe = (
        "import pathlib, shutil, sys;"
        "tools = [t for t in ('gcc', 'cc', 'c++', 'uv', 'make') if shutil.which(t)];"
        "caches = [str(p) for p in map(pathlib.Path, ('/root/.cache', '/tmp/.cache', '/src'))"
        " if p.exists()];"
        "compiled = any(pathlib.Path('/app/functions').rglob('*.pyc'));"
        "print(tools, caches, compiled); sys.exit(bool(tools or caches or not compiled))"
    )
    # As root, to see into /root as well.
    result = podman_run("run", "--rm", "--user", "0", image, "python", "-c", probe)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_holds_the_runtime_and_not_the_local_tools(image: str) -> None:
    # With typer's rich and pygments installed, `import httpx` loads them too.
    probe = (
        "import importlib.util as u, sys;"
        "tools = [m for m in ('typer', 'rich', 'pygments', 'aiosmtpd', 'lark', 'croniter', 'yaml')"
        " if u.find_spec(m)];"
        "import httpx, functions.runtime.serve;"
        "print(tools); sys.exit(bool(tools) or 'pygments' in sys.modules)"
    )
    result = podman_run("run", "--rm", image, "python", "-c", probe)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_adds_little_to_its_base(image: str) -> None:
    added = inspect(image)["Size"] - inspect(BASE_IMAGE)["Size"]
    assert added < MAX_ADDED_MB * 1_000_000, f"the image adds {added / 1e6:.0f} MB to its base"


@pytest.fixture
def container(image: str, redis_url: str) -> Iterator[tuple[str, str]]:
    """analytics, as Knative runs it: read-only root, no capabilities, PORT set."""
    name = f"kshop-packaging-{uuid.uuid4().hex[:8]}"
    port = free_port()
    started = podman_run(
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--env",
        "FUNCTION=analytics",
        "--env",
        f"PORT={port}",
        "--env",
        f"REDIS_URL={redis_url}",
        "--env",
        f"REDIS_PREFIX=packaging:{name}:",
        image,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        podman_run("rm", "--force", "--time", "0", name)


def logs(name: str) -> str:
    result = podman_run("logs", name)
    return (result.stdout + result.stderr)[-4000:]


def wait_until_live(name: str, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        state = podman_run("inspect", "--format", "{{.State.Running}}", name)
        assert state.stdout.strip() == "true", f"the container stopped:\n{logs(name)}"
        time.sleep(0.2)
    pytest.fail(f"no answer on /health/live within {START_TIMEOUT} s:\n{logs(name)}")


def test_it_answers_a_cloudevent_and_stops_cleanly_on_sigterm(
    container: tuple[str, str],
) -> None:
    name, url = container
    wait_until_live(name, url)

    uid = podman_run("exec", name, "python", "-c", "import os; print(os.getuid())")
    assert uid.stdout.strip() == USER

    assert httpx.get(f"{url}/health/ready", timeout=5).status_code == 200, logs(name)
    response = httpx.post(
        url + "/",
        headers={
            "ce-specversion": "1.0",
            "ce-id": uuid.uuid4().hex,
            "ce-source": "/kshop/packaging-test",
            "ce-type": "kshop.packaging.tested",
            "content-type": "application/json",
        },
        json={"hello": "kshop"},
        timeout=10,
    )
    assert 200 <= response.status_code < 300, (
        f"{response.status_code} {response.text}\n{logs(name)}"
    )

    stopping = time.monotonic()
    assert podman_run("kill", "--signal", "TERM", name).returncode == 0
    waited = podman_run("wait", name, timeout=GRACE_SECONDS + 5)
    elapsed = time.monotonic() - stopping
    assert waited.stdout.strip() == "0", f"exit code {waited.stdout.strip()}:\n{logs(name)}"
    assert elapsed < GRACE_SECONDS, f"took {elapsed:.1f} s to stop"
