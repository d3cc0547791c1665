"""The user service end to end: `kshop dev` as a user runs it, driven with curl and `kshop`.

A user created with curl gets one welcome email, and analytics counts one
sign-up, even when the broker delivers `kshop.user.created` a second time
(the same event, resent with `kshop send`: same source, id and data).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kshop_dev import KSHOP, Dev, eventually, start_dev, stop_dev, user_env

pytestmark = pytest.mark.e2e

GRACE = {"name": "Grace Hopper", "email": "grace@example.com"}
README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> str:
    """The shell blocks of the README's users section, as a reader would paste them."""
    section = README.read_text().split("\n## Users, notifications and analytics\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, re.DOTALL))


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    dev = start_dev(
        tmp_path_factory.mktemp("users"),
        user_env(),
        *("--only", "users,notifications,analytics,deadletter"),
    )
    yield dev
    stop_dev(dev)


def curl(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def token(dev: Dev, sub: str, permissions: str = "") -> str:
    minted = dev.kshop("token", "--sub", sub, "--permissions", permissions)
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


def deliveries(dev: Dev, event_id: str, trigger: str) -> int:
    return sum(
        1
        for line in dev.output().splitlines()
        if f"id={event_id} " in line and f"trigger={trigger} " in line and "status=2" in line
    )


def welcomes(dev: Dev, name: str) -> int:
    listed = dev.kshop("mail", "list")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.count(f"Welcome to kshop, {name}")


def test_one_welcome_email_and_one_count_even_when_delivered_twice(dev: Dev) -> None:
    users = dev.endpoints["functions"]["users"]
    admin = token(dev, "admin", "user:create,user:read")
    status, body = curl(
        *("-X", "POST", f"{users}/users"),
        *("-H", f"Authorization: Bearer {admin}", "-H", "Content-Type: application/json"),
        *("-d", json.dumps(GRACE)),
    )
    assert status == 201, body
    user = json.loads(body)

    eventually(lambda: welcomes(dev, "Grace Hopper") == 1, what="the welcome email")
    (event_id,) = set(re.findall(r"accepted\s+kshop\.user\.created id=(\S+)", dev.output()))
    eventually(
        lambda: deliveries(dev, event_id, "analytics-kshop-events") == 1,
        what="the delivery to analytics",
    )

    # The broker delivers the very same event again.
    resent = dev.kshop(
        *("send", "kshop.user.created", "--source", "/kshop/users"),
        *("--id", event_id, "--subject", user["id"]),
        *("--data", json.dumps({"id": user["id"], **GRACE})),
    )
    assert resent.returncode == 0, resent.stderr
    eventually(
        lambda: (
            deliveries(dev, event_id, "notifications-mail")
            == deliveries(dev, event_id, "analytics-kshop-events")
            == 2
        ),
        what="the second delivery through both triggers",
    )

    assert welcomes(dev, "Grace Hopper") == 1
    assert dev.summary()["kshop.user.created"] == 1
    shown = dev.kshop("mail", "show", "1")
    assert "Hello Grace Hopper," in shown.stdout

    # Grace reads herself, with a token that has no permission but her own id.
    status, body = curl(
        f"{users}/users/{user['id']}", "-H", f"Authorization: Bearer {token(dev, user['id'])}"
    )
    assert status == 200
    assert json.loads(body) == user


def test_the_walkthrough_in_the_readme_runs_as_written(dev: Dev) -> None:
    functions = dev.endpoints["functions"]
    script = walkthrough()
    script = script.replace("http://localhost:8103", functions["users"])
    script = script.replace("http://localhost:8101", functions["analytics"])
    # A reader waits a moment for the mail; the script has to wait explicitly.
    wait = "timeout 30 sh -c 'until kshop mail | grep -q \"Ada Lovelace\"; do sleep 0.2; done'"
    script = script.replace("\nkshop mail\n", f"\n{wait}\nkshop mail\n", 1)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=dev.cwd,
        env=dev.env | {"PATH": f"{Path(KSHOP).parent}:{dev.env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert '"name":"Ada Lovelace"' in out
    assert "HTTP/1.1 200 OK" in out and "cache-control: private, max-age=300" in out
    assert '"error":"Email already in use"' in out
    assert '"name":"Ada, Countess of Lovelace"' in out
    assert "Welcome to kshop, Ada Lovelace" in out  # in the list
    assert "Subject: Welcome to kshop, " in out  # message 1: this module's first welcome
    assert '"kshop.user.updated":1' in out
