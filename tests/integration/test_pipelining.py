"""Concurrent Redis commands share one connection, and each caller still gets its own answer."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import ResponseError

from functions.runtime import clients, pipelining
from functions.runtime.settings import settings
from tests.fixtures.services import ServiceEnv

pytestmark = pytest.mark.integration


@pytest.fixture
async def batches(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[int]]:
    """The number of commands in every write."""
    settings.cache_clear()
    sizes: list[int] = []
    write = pipelining._Multiplexer.write

    async def counted(self: pipelining._Multiplexer, batch: pipelining.Queued) -> None:
        sizes.append(len(batch))
        await write(self, batch)

    monkeypatch.setattr(pipelining._Multiplexer, "write", counted)
    yield sizes
    await clients.close()


async def test_concurrent_commands_go_out_together_with_their_own_results(
    batches: list[int],
) -> None:
    keys = [clients.key("p", str(i)) for i in range(50)]
    await asyncio.gather(*(pipelining.call("SET", k, f"v{i}") for i, k in enumerate(keys)))
    values = await asyncio.gather(*(pipelining.call("GET", k) for k in keys))
    assert values == [f"v{i}".encode() for i in range(50)]
    assert batches == [50, 50]


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
    key = clients.key("p", "kept")
    doomed = asyncio.ensure_future(pipelining.call("SET", clients.key("p", "gone"), "x"))
    kept = asyncio.ensure_future(pipelining.call("SET", key, "y"))
    doomed.cancel()
    assert await kept == b"OK"
    assert await pipelining.call("GET", key) == b"y"


async def test_answers_come_back_in_order_across_writes(batches: list[int]) -> None:
    key, blocked = clients.key("p", "later"), clients.key("p", "empty")
    # BLPOP holds the connection for 0.2 s: the writes after it queue behind it in Redis.
    first = asyncio.ensure_future(pipelining.call("BLPOP", blocked, "0.2"))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(pipelining.call("SET", key, "v"))
    await asyncio.sleep(0)
    third = asyncio.ensure_future(pipelining.call("GET", key))
    assert list(await asyncio.gather(first, second, third)) == [None, b"OK", b"v"]
    assert batches == [1, 1, 1]


async def test_a_broken_connection_fails_its_callers_and_the_next_call_reconnects(
    batches: list[int],
) -> None:
    from redis.exceptions import ConnectionError

    own_id = await pipelining.call("CLIENT", "ID")
    await clients.redis().client_kill_filter(_id=own_id)
    with pytest.raises(ConnectionError):
        await pipelining.call("PING")
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
