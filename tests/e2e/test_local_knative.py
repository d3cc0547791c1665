"""`kshop dev` as a user runs it: a subprocess, driven with `kshop send`, curl and `kshop dlq`.

The failure scenario is a dependency outage that outlasts the broker's retries:
Redis stops, an event for analytics (which counts in Redis) fails with 503 on
every attempt, and the broker dead-letters it. Redis comes back, and
`kshop dlq replay` sends the same event (same id) through the broker again,
where analytics now counts it. Redis is the test's own server, given to
`kshop dev` through REDIS_URL, so the test can stop and restart it; MongoDB,
which the deadletter function needs, is started by `kshop dev` itself.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
from collections.abc import Iterator
from contextlib import suppress
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from functions.dev.services import RedisServer
from tests.support.kshop_dev import (
    Dev,
    alive,
    descendants,
    environment,
    eventually,
    start_dev,
    stop_dev,
    user_env,
)

pytestmark = pytest.mark.e2e


class Redis:
    """The test's Redis, which it can stop and start again on the same port."""

    def __init__(self) -> None:
        self.server = RedisServer().start()

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = RedisServer(port=self.server.port).start()


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    redis = Redis()
    yield redis
    redis.stop()


@pytest.fixture(scope="module")
def dev(redis: Redis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    env = user_env(REDIS_URL=redis.server.url)
    dev = start_dev(tmp_path_factory.mktemp("shop"), env, "--only", "analytics,deadletter")
    yield dev
    stop_dev(dev)


def count_of(dev: Dev, event_type: str, expected: int) -> int:
    return eventually(
        lambda: dev.summary().get(event_type) == expected and expected,
        what=f"{expected} x {event_type} counted",
    )


# --- it runs ---------------------------------------------------------------------------


def test_everything_answers_where_the_endpoints_file_says(dev: Dev) -> None:
    endpoints = dev.endpoints
    assert endpoints["broker"].endswith("/default/default")
    assert set(endpoints["functions"]) == {"analytics", "deadletter"}
    broker_base = endpoints["broker"].removesuffix("/default/default")
    assert httpx.get(f"{broker_base}/health", timeout=5).status_code == 200
    triggers = httpx.get(f"{broker_base}/triggers", timeout=5).json()
    assert [t["name"] for t in triggers] == ["analytics-kshop-events"]
    for url in endpoints["functions"].values():
        assert httpx.get(f"{url}/health/ready", timeout=5).status_code == 200
    table = dev.output()
    for what in ("broker", "analytics", "deadletter", "mongodb", "redis", "smtp"):
        assert any(line.startswith(what) for line in table.splitlines()), what


# --- events reach functions --------------------------------------------------------------


def test_kshop_send_reaches_a_function_and_the_live_log_tells(dev: Dev) -> None:
    sent = dev.kshop("send", "kshop.e2e.sent", "--id", "e2e-sent-1", "--data", '{"n": 1}')
    assert sent.returncode == 0, sent.stderr
    assert "202 Accepted" in sent.stdout
    assert count_of(dev, "kshop.e2e.sent", 1)
    log = eventually(
        lambda: [
            line
            for line in dev.output().splitlines()
            if "id=e2e-sent-1" in line and "trigger=analytics-kshop-events" in line
        ],
        what="the delivery in the live log",
    )
    assert log[0].startswith("broker")
    assert "kshop.e2e.sent" in log[0]
    assert "attempt=1" in log[0]
    assert "status=" in log[0]


def test_kshop_send_reads_data_from_stdin_and_sends_structured(dev: Dev) -> None:
    sent = dev.kshop("send", "kshop.e2e.piped", "--data", "-", "--structured", input='{"n": 2}')
    assert sent.returncode == 0, sent.stderr
    assert "(structured)" in sent.stdout
    assert count_of(dev, "kshop.e2e.piped", 1)


def curl(url: str, *args: str) -> str:
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def test_curl_in_binary_and_structured_mode_reaches_a_function(dev: Dev) -> None:
    broker = dev.endpoints["broker"]
    binary = curl(
        broker,
        *("-H", "Ce-Id: curl-1", "-H", "Ce-Specversion: 1.0"),
        *("-H", "Ce-Type: kshop.e2e.curled", "-H", "Ce-Source: /e2e/curl"),
        *("-H", "Content-Type: application/json", "-d", '{"n": 1}'),
    )
    structured = curl(
        broker,
        *("-H", "Content-Type: application/cloudevents+json"),
        "-d",
        json.dumps(
            {
                "specversion": "1.0",
                "id": "curl-2",
                "source": "/e2e/curl",
                "type": "kshop.e2e.curled",
                "datacontenttype": "application/json",
                "data": {"n": 2},
            }
        ),
    )
    assert (binary, structured) == ("202", "202")
    assert count_of(dev, "kshop.e2e.curled", 2)


def test_a_crashed_function_is_restarted_on_its_port(dev: Dev) -> None:
    (old,) = [
        pid
        for pid in descendants(dev.process.pid)
        if environment(pid).get("FUNCTION") == "analytics"
    ]
    os.kill(old, signal.SIGKILL)
    eventually(
        lambda: "analytics" in dev.output() and "exited with code -9; restarting" in dev.output(),
        what="the restart notice",
    )
    url = dev.endpoints["functions"]["analytics"]

    def ready() -> bool:
        with suppress(httpx.HTTPError):
            return httpx.get(f"{url}/health/ready", timeout=2).status_code == 200
        return False

    eventually(ready, what="analytics answering again")
    (new,) = [
        pid
        for pid in descendants(dev.process.pid)
        if environment(pid).get("FUNCTION") == "analytics"
    ]
    assert new != old


# --- dead letters and replay -----------------------------------------------------------


def test_an_event_failed_by_an_outage_is_dead_lettered_and_replays_once_fixed(
    dev: Dev, redis: Redis
) -> None:
    redis.stop()
    try:
        sent = dev.kshop(
            "send", "kshop.e2e.outage", "--id", "outage-1", "--data", '{"orderId": "o-1"}'
        )
        assert sent.returncode == 0, sent.stderr
        # The broker retries 5 times over about 6 s, then hands the event to deadletter.
        eventually(lambda: dev.dead_letters("kshop.e2e.outage"), what="the dead letter")
    finally:
        redis.start()
    listed = dev.kshop("dlq", "list", "--type", "kshop.e2e.outage", "--json")
    (letter,) = json.loads(listed.stdout)["items"]
    assert letter["eventId"] == "outage-1"
    assert letter["status"] == "failed"
    assert letter["error"]["code"] == 503
    assert letter["error"]["destination"].startswith(dev.endpoints["functions"]["analytics"])
    assert "unavailable" in letter["error"]["message"]
    table = dev.kshop("dlq", "list", "--code", "503").stdout
    assert letter["id"] in table
    assert "kshop.e2e.outage" in table

    replayed = dev.kshop("dlq", "replay", letter["id"])

    assert replayed.returncode == 0, replayed.stderr
    assert "replayed" in replayed.stdout
    assert count_of(dev, "kshop.e2e.outage", 1)
    shown = json.loads(dev.kshop("dlq", "show", letter["id"]).stdout)
    assert shown["status"] == "replayed"
    assert [r["status"] for r in shown["replays"]] == [202]
    assert shown["event"]["id"] == "outage-1"
    assert shown["event"]["data"] == {"orderId": "o-1"}
    # It went through: no second dead letter for the event.
    assert [d["id"] for d in dev.dead_letters("kshop.e2e.outage")] == [letter["id"]]


def test_purge_clears_dead_letters_by_filter(dev: Dev, redis: Redis) -> None:
    redis.stop()
    try:
        assert dev.kshop("send", "kshop.e2e.purged", "--data", "{}").returncode == 0
        eventually(lambda: dev.dead_letters("kshop.e2e.purged"), what="a dead letter")
    finally:
        redis.start()
    purged = dev.kshop("dlq", "purge", "--type", "kshop.e2e.purged", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.strip() == "deleted 1"
    assert dev.dead_letters("kshop.e2e.purged") == []


# --- mail ------------------------------------------------------------------------------


def test_kshop_mail_lists_and_shows_what_the_smtp_server_kept(dev: Dev) -> None:
    host, port = dev.endpoints["smtp"].removeprefix("smtp://").split(":")
    message = EmailMessage()
    message["From"] = "kshop <no-reply@kshop.example>"
    message["To"] = "ada@example.com"
    message["Subject"] = "Your order o-1"
    message.set_content("It is on its way.")
    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        smtp.send_message(message)

    listed = dev.kshop("mail", "list")
    assert listed.returncode == 0, listed.stderr
    assert "ada@example.com" in listed.stdout
    assert "Your order o-1" in listed.stdout
    shown = dev.kshop("mail", "show", "1")
    assert "Subject: Your order o-1" in shown.stdout
    assert "It is on its way." in shown.stdout


# --- stopping --------------------------------------------------------------------------


def test_ctrl_c_stops_every_process_it_started(tmp_path: Path) -> None:
    # Nothing configured: kshop dev starts Redis and MongoDB itself, and must stop them.
    dev = start_dev(tmp_path, user_env(), "--only", "analytics")
    try:
        started = descendants(dev.process.pid)
        commands = {Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] for pid in started}
        assert any(b"redis-server" in c for c in commands)
        assert len(started) >= 4  # redis, mongodb, the broker, analytics

        os.killpg(dev.process.pid, signal.SIGINT)

        assert dev.process.wait(30) == 0
        assert [pid for pid in started if alive(pid)] == []
        assert not (tmp_path / ".kshop" / "endpoints.json").exists()
        assert "kshop dev: stopping" in dev.output()
    finally:
        stop_dev(dev)
