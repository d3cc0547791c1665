"""Concurrent Redis commands share one connection, and each caller still gets its own answer."""

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.exceptions import ResponseError

from functions.dev.services import RedisServer, free_port
from functions.runtime import clients, pipelining
from functions.runtime.settings import settings
from tests.fixtures.services import ServiceEnv
from tests.support.certificates import self_signed
from tests.support.saga_stack import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def batches(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[int]]:
    """The number of commands in every write."""
    settings.cache_clear()
    sizes: list[int] = []
    send = pipelining._Link.send

    def counted(self: pipelining._Link, packed: bytes, callers: list[asyncio.Future[Any]]) -> None:
        sizes.append(len(callers))
        send(self, packed, callers)

    monkeypatch.setattr(pipelining._Link, "send", counted)
    yield sizes
    await clients.close()


async def _running(client_id: int, command: str) -> bool:
    """Whether Redis is running this command for the client with this id (BLPOP: blocked)."""
    listed = await clients.redis().client_list()
    return any(int(c["id"]) == client_id and c["cmd"] == command for c in listed)


async def test_concurrent_commands_go_out_together_with_their_own_results(
    batches: list[int],
) -> None:
    keys = [clients.key("p", str(i)) for i in range(50)]
    await asyncio.gather(*(pipelining.call("SET", k, f"v{i}") for i, k in enumerate(keys)))
    values = await asyncio.gather(*(pipelining.call("GET", k) for k in keys))
    assert values == [f"v{i}".encode() for i in range(50)]
    assert batches == [50, 50]


@pytest.fixture
def long_deferral(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deferral no test outlasts: only another command, or closing, sends a deferred one."""
    monkeypatch.setattr(pipelining, "DEFER_UP_TO", 3600)


@pytest.mark.usefixtures("long_deferral")
async def test_a_deferrable_command_waits_for_the_next_command_and_goes_out_first(
    batches: list[int],
) -> None:
    key = clients.key("p", "deferred")
    await pipelining.call("PING")
    batches.clear()
    recorded = pipelining.issue("SET", key, "recorded", deferrable=True)
    await asyncio.sleep(0.05)  # a plain command would have gone out in the first loop turn
    assert batches == [] and not recorded.done()
    assert await pipelining.call("GET", key) == b"recorded"
    assert recorded.result() == b"OK"
    assert batches == [2]


async def test_a_deferrable_command_alone_goes_out_after_the_deferral(batches: list[int]) -> None:
    await pipelining.call("PING")
    batches.clear()
    loop = asyncio.get_running_loop()
    issued = loop.time()
    assert await pipelining.issue("SET", clients.key("p", "alone"), "v", deferrable=True) == b"OK"
    # Not much later than the deferral (leeway for a loaded machine), and never before it.
    assert pipelining.DEFER_UP_TO - 0.001 <= loop.time() - issued < 1
    assert batches == [1]


@pytest.mark.usefixtures("long_deferral")
async def test_closing_sends_a_deferred_command_at_once(batches: list[int]) -> None:
    key = clients.key("p", "closing")
    await pipelining.call("PING")
    recorded = pipelining.issue("SET", key, "v", deferrable=True)
    await asyncio.wait_for(clients.close(), 10)
    assert recorded.result() == b"OK"
    assert await clients.redis().get(key) == b"v"


async def test_a_failed_command_fails_only_its_caller(batches: list[int]) -> None:
    text, number = clients.key("p", "text"), clients.key("p", "number")
    await pipelining.call("SET", text, "not a number")
    results = await asyncio.gather(
        pipelining.call("INCR", text), pipelining.call("INCR", number), return_exceptions=True
    )
    assert isinstance(results[0], ResponseError)
    assert results[1] == 1
    assert batches == [1, 2]


async def test_a_cancelled_caller_does_not_break_the_batch(batches: list[int]) -> None:
    own_id = await pipelining.call("CLIENT", "ID")
    gone, kept = clients.key("p", "gone"), clients.key("p", "kept")
    # Three commands in one write; the first caller gives up before its answer comes.
    doomed = pipelining.issue("SET", gone, "x")
    before = pipelining.issue("SET", kept, "y")
    after = pipelining.issue("GET", kept)
    doomed.cancel()
    assert list(await asyncio.gather(before, after)) == [b"OK", b"y"]
    assert batches == [1, 3]
    assert await clients.redis().get(gone) == b"x"  # it was issued, so it ran all the same
    assert await pipelining.call("CLIENT", "ID") == own_id  # and the connection was kept


async def test_answers_come_back_in_order_across_writes(batches: list[int]) -> None:
    key, blocked = clients.key("p", "later"), clients.key("p", "empty")
    await pipelining.call("PING")  # connected: from here each loop turn's commands go out
    batches.clear()
    # BLPOP holds the connection for 0.2 s: the writes after it queue behind it in Redis.
    first = pipelining.issue("BLPOP", blocked, "0.2")
    await asyncio.sleep(0)  # one loop turn: the write of what was issued in it
    second = pipelining.issue("SET", key, "v")
    await asyncio.sleep(0)
    third = pipelining.issue("GET", key)
    assert list(await asyncio.gather(first, second, third)) == [None, b"OK", b"v"]
    assert batches == [1, 1, 1]


async def test_a_broken_connection_fails_its_callers_and_the_next_call_reconnects(
    batches: list[int],
) -> None:
    from redis.exceptions import ConnectionError

    own_id = await pipelining.call("CLIENT", "ID")
    waiting = pipelining.issue("BLPOP", clients.key("p", "never"), "5")
    await eventually(lambda: _running(own_id, "blpop"), within=5, every=0.01, what="BLPOP")
    await clients.redis().client_kill_filter(_id=own_id)
    with pytest.raises(ConnectionError):
        await waiting
    assert await pipelining.call("PING") == b"PONG"
    assert await pipelining.call("CLIENT", "ID") != own_id


async def test_a_connection_lost_while_idle_is_replaced_without_failing_anyone(
    batches: list[int],
) -> None:
    own_id = await pipelining.call("CLIENT", "ID")
    link = pipelining._multiplexers[asyncio.get_running_loop()].link
    assert link is not None
    await clients.redis().client_kill_filter(_id=own_id)

    async def lost() -> bool:
        return link.broken

    await eventually(lost, within=5, every=0.01, what="the end of the stream at the link")
    assert await pipelining.call("PING") == b"PONG"
    assert await pipelining.call("CLIENT", "ID") != own_id


async def test_redis_that_stops_answering_fails_its_callers_once_the_deadline_passes(
    batches: list[int],
) -> None:
    from redis.exceptions import TimeoutError as RedisTimeout

    await pipelining.call("PING")
    link = pipelining._multiplexers[asyncio.get_running_loop()].link
    assert link is not None
    link.timeout = 0.2
    await clients.redis().client_pause(1000)  # Redis holds every client's commands for 1 s
    started = asyncio.get_running_loop().time()
    with pytest.raises(RedisTimeout):
        await pipelining.call("PING")
    assert asyncio.get_running_loop().time() - started < 0.9
    await asyncio.sleep(1)
    assert await pipelining.call("PING") == b"PONG"


async def test_closing_the_clients_closes_the_shared_connection(batches: list[int]) -> None:
    own_id = await pipelining.call("CLIENT", "ID")
    await clients.close()
    connected = {int(c["id"]) for c in await clients.redis().client_list()}
    assert own_id not in connected
    assert await pipelining.call("PING") == b"PONG"


async def test_the_connection_is_opened_by_redis_py_with_the_url_s_user_and_database(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.asyncio import Redis

    settings.cache_clear()
    user, password = f"kshop-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = Redis.from_url(service_env.redis_url)
    await admin.acl_setuser(
        user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"]
    )
    url = urlsplit(service_env.redis_url)
    as_user = url._replace(netloc=f"{user}:{password}@{url.hostname}:{url.port}", path="/7")
    monkeypatch.setenv("REDIS_URL", as_user.geturl())
    settings.cache_clear()
    key = clients.key("p", "db7")
    try:
        assert await pipelining.call("ACL", "WHOAMI") == user.encode()
        await pipelining.call("SET", key, "seven")
        in_seven = Redis.from_url(url._replace(path="/7").geturl())
        assert await in_seven.get(key) == b"seven"
        assert await admin.get(key) is None  # database 0
        await in_seven.delete(key)
        await in_seven.aclose()
    finally:
        await clients.close()
        await admin.acl_deluser(user)
        await admin.aclose()


async def test_closing_waits_for_the_answers_to_what_was_issued(batches: list[int]) -> None:
    key = clients.key("p", "late")
    await pipelining.call("PING")
    await clients.redis().client_pause(300)
    written = pipelining.issue("SET", key, "still written")  # nobody awaits it
    await clients.close()
    assert written.result() == b"OK"
    assert await clients.redis().get(key) == b"still written"


async def test_resp3_connections_work_too(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"{service_env.redis_url}?protocol=3")
    settings.cache_clear()
    key = clients.key("p", "resp3")
    try:
        assert isinstance(await pipelining.call("HELLO"), dict)  # RESP3 answers in maps
        assert await pipelining.call("SET", key, "v", "NX", "EX", 60) == b"OK"
        assert await pipelining.call("GET", key) == b"v"
        assert 0 < await pipelining.call("TTL", key) <= 60
    finally:
        await clients.close()


@contextlib.asynccontextmanager
async def _redis_server(*options: str) -> AsyncIterator[RedisServer]:
    """A redis-server of the test's own with these options; the clients close before it stops."""
    server = await asyncio.to_thread(RedisServer(options=options).start)
    try:
        yield server
    finally:
        await clients.close()
        server.stop()


async def test_a_unix_socket_url_works_too(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "redis.sock"
    async with _redis_server("--unixsocket", str(path)):
        monkeypatch.setenv("REDIS_URL", f"unix://{path}?db=2")
        settings.cache_clear()
        assert await pipelining.call("SET", "k", "over a socket file") == b"OK"
        assert b" db=2 " in await pipelining.call("CLIENT", "INFO")
        assert await clients.redis().get("k") == b"over a socket file"


async def test_a_tls_url_works_too(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    async with _redis_server(
        *("--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)),
        *("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"),
    ):
        monkeypatch.setenv("REDIS_URL", f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}")
        settings.cache_clear()
        assert await pipelining.call("SET", "k", "over TLS") == b"OK"
        assert await pipelining.call("GET", "k") == b"over TLS"
        assert await clients.redis().get("k") == b"over TLS"


async def test_redis_down_fails_every_caller_with_a_connection_error(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.exceptions import ConnectionError

    from functions.dev.services import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    settings.cache_clear()
    try:
        results = await asyncio.gather(
            pipelining.call("GET", "a"), pipelining.call("GET", "b"), return_exceptions=True
        )
    finally:
        await clients.close()
    assert all(isinstance(r, ConnectionError) for r in results)


def test_a_loop_that_stops_before_its_flush_strands_nothing(service_env: ServiceEnv) -> None:
    settings.cache_clear()
    # A call is queued, then its loop stops before the flush it scheduled can run.
    abandoned = asyncio.new_event_loop()
    queued = abandoned.create_task(pipelining.call("GET", "x"))
    abandoned.call_soon(abandoned.stop)
    abandoned.run_forever()
    abandoned.close()
    assert not queued.done()

    async def use() -> bytes | None:
        try:
            value: bytes | None = await asyncio.wait_for(pipelining.call("GET", "x"), 5)
            return value
        finally:
            await clients.close()

    assert asyncio.run(use()) is None


FIRST_COMMAND = """
import asyncio, sys
from functions.runtime import pipelining
assert "redis" not in sys.modules and "hiredis" not in sys.modules  # nothing at start-up
assert asyncio.run(pipelining.call("PING")) == b"PONG"
assert "opentelemetry.sdk.metrics" not in sys.modules, "redis-py loaded the metrics SDK"
print("ok")
"""


def test_the_first_command_imports_redis_py_without_the_otel_metrics_sdk(
    service_env: ServiceEnv,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", FIRST_COMMAND],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stderr
