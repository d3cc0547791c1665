"""Redis commands from concurrent events share one connection and its round trips.

Every event costs two idempotency commands. Sent one by one through redis-py's
pool, each takes a connection, waits for its own round trip and spends ~150 µs
of CPU; at a few hundred events a second the waits pile up into tens of
milliseconds at p99. Here each event loop keeps one connection: the commands
issued in one loop turn are written together, at once, and a single reader
hands the answers back in order. No command waits for a free connection or for
another batch's answer, and redis-py still packs and parses every command.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from functions.runtime import clients

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection, ConnectionPool

Queued = list[tuple[tuple[Any, ...], asyncio.Future[Any]]]

# The event loop keeps only weak references to tasks: these are held until done.
_tasks: set[asyncio.Task[None]] = set()


def _spawn(loop: asyncio.AbstractEventLoop, work: Any) -> asyncio.Task[None]:
    task = loop.create_task(work)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


class _Link:
    """One connection of our own and the callers waiting on it, in the order written."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        # Configured like the pool's connections, but not one of them: it is never
        # shared, and it is dropped, not returned, when it breaks. No socket timeout:
        # redis-py would then arm a timer for every read and wrap every write in a
        # task; the reader keeps one deadline instead.
        self.timeout: float | None = pool.connection_kwargs.get("socket_timeout")
        self.connection: AbstractConnection = pool.connection_class(
            **{**pool.connection_kwargs, "socket_timeout": None}
        )
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.reader: asyncio.Task[None] | None = None
        self.broken = False

    async def read(self) -> None:
        from redis.exceptions import ResponseError
        from redis.exceptions import TimeoutError as RedisTimeout

        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as deadline:
                while self.waiting:
                    if self.timeout:
                        deadline.reschedule(loop.time() + self.timeout)
                    try:
                        answer = await self.connection.read_response(disconnect_on_error=False)
                    except ResponseError as exc:  # an error reply: its caller's, not the link's
                        answer = exc
                    caller = self.waiting.popleft()
                    if caller.done():  # its caller was cancelled; the answer is still consumed
                        continue
                    if isinstance(answer, Exception):
                        caller.set_exception(answer)
                    else:
                        caller.set_result(answer)
        except TimeoutError:
            await self.fail(RedisTimeout(f"No answer from Redis within {self.timeout} s"))
        except Exception as exc:
            await self.fail(exc)

    async def fail(self, error: Exception) -> None:
        """A broken connection fails every caller on it; the next command opens another."""
        self.broken = True
        waiting, self.waiting = self.waiting, deque()
        for caller in waiting:
            if not caller.done():
                caller.set_exception(error)
        await self.connection.disconnect(nowait=True)


class _Multiplexer:
    """The commands of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queued: Queued = []
        self.link: _Link | None = None
        self.writing = asyncio.Lock()

    def call(self, command: tuple[Any, ...]) -> asyncio.Future[Any]:
        caller: asyncio.Future[Any] = self.loop.create_future()
        if not self.queued:
            self.loop.call_soon(self.flush)
        self.queued.append((command, caller))
        return caller

    def flush(self) -> None:
        batch, self.queued = self.queued, []
        _spawn(self.loop, self.write(batch))

    async def write(self, batch: Queued) -> None:
        # One writer at a time: callers must wait in the order their bytes were sent.
        async with self.writing:
            try:
                link = await self.connected()
            except Exception as exc:  # Redis unreachable: these callers get the error
                for _, caller in batch:
                    if not caller.done():
                        caller.set_exception(exc)
                return
            link.waiting.extend(caller for _, caller in batch)
            try:
                packed = link.connection.pack_commands([command for command, _ in batch])
                await link.connection.send_packed_command(packed, check_health=False)
            except Exception as exc:
                await link.fail(exc)
                return
            if link.reader is None or link.reader.done():
                link.reader = _spawn(self.loop, link.read())

    async def connected(self) -> _Link:
        pool = clients.redis().connection_pool
        # A closed or replaced client (clients.close(), new settings) means a new connection.
        if self.link is None or self.link.broken or self.link.pool is not pool:
            await self.close()
            link = _Link(pool)
            await link.connection.connect()  # type: ignore[no-untyped-call]
            self.link = link
        return self.link

    async def close(self) -> None:
        from redis.exceptions import ConnectionError

        if self.link is not None:
            await self.link.fail(ConnectionError("The Redis client was closed"))
            self.link = None


_multiplexers: dict[asyncio.AbstractEventLoop, _Multiplexer] = {}


async def close() -> None:
    """Close this loop's connection; `clients.close()` calls it."""
    multiplexer = _multiplexers.pop(asyncio.get_running_loop(), None)
    if multiplexer is not None:
        await multiplexer.close()


async def call(*command: Any) -> Any:
    """Run one Redis command on this loop's shared connection; its raw answer."""
    loop = asyncio.get_running_loop()
    multiplexer = _multiplexers.get(loop)
    if multiplexer is None:
        multiplexer = _multiplexers[loop] = _Multiplexer(loop)
    return await multiplexer.call(command)
