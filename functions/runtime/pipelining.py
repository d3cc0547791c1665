"""Redis commands from concurrent events share one connection and its round trips.

Every idempotent event costs two Redis commands, and at a steady rate each
travels alone. Through redis-py a command costs a pooled connection, a write
task, a timer and a stream reader's wake-up, ~175 µs of CPU a round trip here,
more than the rest of the event. So each event loop keeps one connection of
its own: the commands issued in one loop turn go out in one write, and the
answers are parsed where the bytes arrive, by hiredis, and handed to their
callers in order. redis-py still opens the connection (TLS, AUTH or HELLO,
SELECT), so every REDIS_URL it accepts works here too.

A command nobody waits for (an idempotency record) may wait a few
milliseconds for company: it goes out in the next command's write, so at a
steady rate an event costs Redis one round trip, not two. Each write is a
wake-up on both sides, and on a VM a wake-up is most of a command's cost.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from functions.runtime import clients

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection, ConnectionPool

# What hiredis returns while no whole answer is buffered; no answer can be it.
_INCOMPLETE = object()

# How long a deferrable command waits for another to share its write: at a few
# hundred events a second the next event's lock comes sooner. A process that
# dies in between loses the command; see idempotency.complete for why that costs nothing.
DEFER_UP_TO = 0.005

# The event loop keeps only weak references to tasks: these are held until done.
_tasks: set[asyncio.Task[None]] = set()


class _Link(asyncio.Protocol):
    """One connection: commands out in order, answers back to their callers in that order."""

    def __init__(self, pool: ConnectionPool, connection: AbstractConnection) -> None:
        import hiredis
        from redis.exceptions import InvalidResponse, ResponseError

        self.pool = pool
        self.connection = connection  # redis-py's, which made the connection; kept to close it
        self.loop = asyncio.get_running_loop()
        self.timeout: float | None = pool.connection_kwargs.get("socket_timeout")
        self.parser = hiredis.Reader(
            protocolError=InvalidResponse, replyError=ResponseError, notEnoughData=_INCOMPLETE
        )
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.answered = 0.0
        self.deadline: asyncio.TimerHandle | None = None
        self.broken = False
        # redis-py has read the handshake's answers and nothing since: from here on
        # the transport's bytes come to this protocol instead of redis-py's stream.
        writer = connection._writer
        assert writer is not None, "the connection is open"
        self.transport = writer.transport
        self.transport.set_protocol(self)

    @classmethod
    async def open(cls, pool: ConnectionPool) -> _Link:
        connection = pool.connection_class(**pool.connection_kwargs)
        await connection.connect()  # type: ignore[no-untyped-call]
        return cls(pool, connection)

    def send(self, packed: bytes, callers: list[asyncio.Future[Any]]) -> None:
        if not self.waiting:
            # One deadline while answers are owed: it runs from the last answer
            # (or from now), not from each command, so it costs no timer per read.
            self.answered = self.loop.time()
            if self.timeout:
                self.deadline = self.loop.call_at(self.answered + self.timeout, self._expired)
        self.waiting.extend(callers)
        self.transport.write(packed)

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        self.answered = self.loop.time()
        try:
            while (answer := self.parser.gets()) is not _INCOMPLETE:
                caller = self.waiting.popleft()
                if caller.done():  # its caller was cancelled; the answer is still consumed
                    continue
                if isinstance(answer, Exception):  # an error reply: its caller's, not the link's
                    caller.set_exception(answer)
                else:
                    caller.set_result(answer)
        except Exception as exc:  # bytes that are not RESP, or an answer nobody asked for
            self.fail(exc)
            return
        if not self.waiting and self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expired(self) -> None:
        from redis.exceptions import TimeoutError as RedisTimeout

        self.deadline = None
        if not self.waiting or self.timeout is None:
            return
        due = self.answered + self.timeout
        if self.loop.time() < due:  # answers came since it was set
            self.deadline = self.loop.call_at(due, self._expired)
        else:
            self.fail(RedisTimeout(f"No answer from Redis within {self.timeout} s"))

    def connection_lost(self, exc: Exception | None) -> None:
        from redis.exceptions import ConnectionError

        self.fail(ConnectionError(f"Redis closed the connection: {exc or 'end of stream'}"))

    def fail(self, error: Exception) -> None:
        """A broken connection fails every caller on it; the next command opens another."""
        self.broken = True
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        waiting, self.waiting = self.waiting, deque()
        for caller in waiting:
            if not caller.done():
                caller.set_exception(error)
        self.transport.close()

    async def close(self, error: Exception) -> None:
        self.fail(error)
        await self.connection.disconnect(nowait=True)


class _Multiplexer:
    """The commands of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Imported with the first command, like redis-py: not on a function's start-up path.
        import hiredis

        self.pack = hiredis.pack_command
        self.loop = loop
        self.queued: list[bytes] = []
        self.callers: list[asyncio.Future[Any]] = []
        self.link: _Link | None = None
        self.connecting: asyncio.Task[None] | None = None
        # The flush that is due: at the end of this loop turn, or after a deferral.
        self.due: asyncio.Handle | None = None
        self.deferred = False

    def call(self, command: tuple[Any, ...], deferrable: bool) -> asyncio.Future[Any]:
        caller: asyncio.Future[Any] = self.loop.create_future()
        if self.due is None:
            self.deferred = deferrable
            self.due = (
                self.loop.call_later(DEFER_UP_TO, self.flush)
                if deferrable
                else self.loop.call_soon(self.flush)
            )
        elif self.deferred and not deferrable:  # it takes what waits with it now
            self.due.cancel()
            self.deferred = False
            self.due = self.loop.call_soon(self.flush)
        self.queued.append(self.pack(command))
        self.callers.append(caller)
        return caller

    def flush(self) -> None:
        if self.due is not None:
            self.due.cancel()  # when called directly, by connect() or close()
            self.due = None
        if not self.callers:
            return
        link = self.link
        # A closed or replaced client (clients.close(), new settings) means a new connection.
        if link is None or link.broken or link.pool is not clients.redis().connection_pool:
            if self.connecting is None:
                self.connecting = self.loop.create_task(self.connect())
                _tasks.add(self.connecting)
                self.connecting.add_done_callback(_tasks.discard)
            return  # what is queued by the time it is connected goes out then
        packed, callers = b"".join(self.queued), self.callers
        self.queued, self.callers = [], []
        link.send(packed, callers)

    async def connect(self) -> None:
        try:
            # First: on the first call this imports redis-py, the way clients does it.
            pool = clients.redis().connection_pool
            if self.link is not None:  # broken, or of a client that was replaced
                from redis.exceptions import ConnectionError

                await self.link.close(ConnectionError("The connection was replaced"))
            self.link = await _Link.open(pool)
        except Exception as exc:  # Redis unreachable: the callers so far get the error
            callers, self.queued, self.callers = self.callers, [], []
            for caller in callers:
                if not caller.done():
                    caller.set_exception(exc)
        finally:
            self.connecting = None
        self.flush()

    async def close(self) -> None:
        """Close the connection once every command already issued has its answer.

        Some are not awaited by anyone (an idempotency record written after the
        answer went out), so a shutdown must not cut them off.
        """
        from redis.exceptions import ConnectionError

        self.flush()  # what is deferred goes now
        link = self.link
        owed = [*self.callers, *(link.waiting if link else ())]
        if owed:  # each is bounded by the connect timeout and the link's deadline
            await asyncio.wait(owed)
        self.link = None
        if link is not None:
            await link.close(ConnectionError("The Redis client was closed"))


_multiplexers: dict[asyncio.AbstractEventLoop, _Multiplexer] = {}


async def close() -> None:
    """Close this loop's connection; `clients.close()` calls it."""
    multiplexer = _multiplexers.pop(asyncio.get_running_loop(), None)
    if multiplexer is not None:
        await multiplexer.close()


def issue(*command: Any, deferrable: bool = False) -> asyncio.Future[Any]:
    """Queue one Redis command on this loop's shared connection; the future of its raw answer.

    It goes out in this loop turn's write, after every command issued before it
    and before every command issued after it, whether or not anyone awaits it.
    A deferrable one goes out with the next command that is not, or after
    DEFER_UP_TO seconds, whichever comes first: in the same order all the same.
    """
    loop = asyncio.get_running_loop()
    multiplexer = _multiplexers.get(loop)
    if multiplexer is None:
        multiplexer = _multiplexers[loop] = _Multiplexer(loop)
    return multiplexer.call(command, deferrable)


async def call(*command: Any) -> Any:
    """Run one Redis command on this loop's shared connection; its raw answer."""
    return await issue(*command)
