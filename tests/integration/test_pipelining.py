"""Concurrent Redis commands share a pipeline, and each caller still gets its own answer."""

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
    """The size of every pipeline sent."""
    settings.cache_clear()
    sizes: list[int] = []
    send = pipelining._send

    async def counted(batch: pipelining.Waiting) -> None:
        sizes.append(len(batch))
        await send(batch)

    monkeypatch.setattr(pipelining, "_send", counted)
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
    assert await kept is True
    assert await pipelining.call("GET", key) == b"y"


async def test_redis_down_fails_every_caller_with_a_connection_error(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.exceptions import ConnectionError

    from tests.support.servers import free_port

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
