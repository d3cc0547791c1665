"""The outbox against a real MongoDB-wire server and a real HTTP broker that goes down."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pymongo.asynchronous.collection import AsyncCollection

from functions.dev.services import free_port
from functions.runtime import EventData, Function, clients, outbox, tracing
from functions.runtime.bearer import mint
from functions.runtime.settings import settings
from functions.runtime.testing import running
from functions.users import main as users
from tests.fixtures.services import ServiceEnv
from tests.support.saga_stack import eventually
from tests.support.servers import Recorder, Request, serving

pytestmark = pytest.mark.integration

Collection = AsyncCollection[dict[str, Any]]


class Noted(EventData, type="kshop.outboxtest.noted"):
    n: int


@pytest.fixture
def sink_port(service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch) -> int:
    """The broker's port, known before the broker runs, so it can stop and start on it."""
    port = free_port()
    monkeypatch.setenv("K_SINK", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("PUBLISH_RETRIES", "0")
    monkeypatch.setenv("OUTBOX_INTERVAL", "0.1")
    monkeypatch.setenv("JWT_SECRET", "a-secret-for-the-outbox-tests-of-32-bytes")
    settings.cache_clear()
    return port


@pytest.fixture
async def things(sink_port: int) -> AsyncIterator[Collection]:
    yield clients.mongo()["things"]
    await clients.close()


def sender() -> Function:
    return Function("outboxtest", uses={"mongo"})


async def write(things: Collection, document_id: str, *numbers: int, **fields: Any) -> None:
    entries = [outbox.entry(Noted(n=n), subject=document_id) for n in numbers]
    await things.insert_one({"_id": document_id, outbox.FIELD: entries, **fields})


async def pending(things: Collection, document_id: str) -> list[dict[str, Any]]:
    document = await things.find_one({"_id": document_id})
    assert document is not None
    entries: list[dict[str, Any]] = document[outbox.FIELD]
    return entries


async def arrived(sink: Recorder, count: int) -> None:
    async with asyncio.timeout(10):
        # The recorder signals nothing; polling its list is the only way to wait.
        while len(sink.requests) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def numbers(requests: list[Request]) -> list[int]:
    return [json.loads(r.body)["n"] for r in requests]


async def test_flush_sends_in_order_with_the_ids_fixed_at_write_time(
    things: Collection, sink_port: int
) -> None:
    await write(things, "a", 1, 2, 3)
    written = await pending(things, "a")
    await asyncio.sleep(0.05)  # so a time taken at publish would differ
    sink = Recorder()
    async with serving(sink, sink_port):
        await outbox.flush(sender(), things, "a")
    assert numbers(sink.requests) == [1, 2, 3]
    assert [r.headers["ce-id"] for r in sink.requests] == [e["id"] for e in written]
    assert [datetime.fromisoformat(r.headers["ce-time"]) for r in sink.requests] == [
        e["time"] for e in written
    ]
    assert {r.headers["ce-type"] for r in sink.requests} == {"kshop.outboxtest.noted"}
    assert {r.headers["ce-source"] for r in sink.requests} == {"/kshop/outboxtest"}
    assert {r.headers["ce-subject"] for r in sink.requests} == {"a"}
    assert await pending(things, "a") == []


def failed_publishes() -> float:
    """How many of the test function's events the broker has not taken, so far."""
    failed = {
        "function": "outboxtest",
        "type": Noted.event_type,
        "via": "sink",
        "outcome": "failed",
    }
    return REGISTRY.get_sample_value("kshop_events_published_total", failed) or 0.0


async def test_with_the_broker_down_the_entries_stay_and_flush_does_not_raise(
    things: Collection,
) -> None:
    await write(things, "a", 1, 2)
    before, failed = await pending(things, "a"), failed_publishes()
    await outbox.flush(sender(), things, "a")
    # The first event was tried and failed; the second waits behind it, in order.
    assert failed_publishes() == failed + 1
    assert await pending(things, "a") == before


async def test_a_resend_after_a_crash_has_the_same_id_so_consumers_drop_it(
    things: Collection, sink_port: int
) -> None:
    await write(things, "a", 1)
    [entry] = await pending(things, "a")
    sink = Recorder()
    async with serving(sink, sink_port):
        await outbox.flush(sender(), things, "a")
        # The process died after the broker took the event, before the $pull landed.
        await things.update_one({"_id": "a"}, {"$push": {outbox.FIELD: entry}})
        await outbox.flush(sender(), things, "a")
    assert [r.headers["ce-id"] for r in sink.requests] == [entry["id"], entry["id"]]
    assert sink.requests[0].body == sink.requests[1].body


async def test_a_refused_event_holds_back_only_its_own_document(
    things: Collection, sink_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "BATCH", 1)  # and the sweep pages past it
    await write(things, "a", 1, 2)
    await write(things, "b", 3)
    await write(things, "c", 4)
    sink = Recorder(statuses=[400])
    async with serving(sink, sink_port):
        tried = await outbox.sweep(sender(), things, older_than=0)
    assert tried == 3
    assert numbers(sink.requests) == [1, 3, 4]
    assert [e["data"]["n"] for e in await pending(things, "a")] == [1, 2]  # order kept
    assert await pending(things, "b") == await pending(things, "c") == []


async def test_a_sweep_stops_at_the_first_outage(things: Collection) -> None:
    for name in "abc":
        await write(things, name, 1)
    assert await outbox.sweep(sender(), things, older_than=0) == 1


async def test_a_sweep_leaves_young_entries_to_their_writer(
    things: Collection, sink_port: int
) -> None:
    await write(things, "a", 1)
    sink = Recorder()
    async with serving(sink, sink_port):
        assert await outbox.sweep(sender(), things, older_than=60) == 0
    assert sink.requests == []


async def test_a_retired_document_is_deleted_once_its_events_are_out(
    things: Collection, sink_port: int
) -> None:
    await write(things, "a", 1, **{outbox.RETIRED: True})
    await outbox.flush(sender(), things, "a")
    assert await things.find_one({"_id": "a"}) is not None  # broker down: kept, with its event
    async with serving(Recorder(), sink_port):
        await outbox.flush(sender(), things, "a")
    assert await things.find_one({"_id": "a"}) is None


async def test_the_event_continues_the_trace_of_the_write(
    things: Collection, sink_port: int
) -> None:
    with tracing.tracer().start_as_current_span("write") as span:
        await write(things, "a", 1)
        trace_id = format(span.get_span_context().trace_id, "032x")
    sink = Recorder()
    async with serving(sink, sink_port):
        await outbox.flush(sender(), things, "a")  # later, outside that span
    assert sink.requests[0].headers["ce-traceparent"].split("-")[1] == trace_id


async def test_install_indexes_the_outbox_and_sweeps_until_shutdown(
    things: Collection, sink_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[float] = []  # when each sweep began
    tried: list[int] = []  # how many documents each finished sweep tried
    sweep = outbox.sweep

    async def counted(function: Function, collection: Collection, older_than: float) -> int:
        started.append(asyncio.get_running_loop().time())
        tried.append(await sweep(function, collection, older_than))
        return tried[-1]

    async def three_more_sweeps(what: str) -> None:
        target = len(tried) + 3

        async def swept() -> bool:
            return len(tried) >= target

        await eventually(swept, within=10, what=what)

    monkeypatch.setattr(outbox, "sweep", counted)
    function = sender()
    outbox.install(function, "things", interval=0.1)
    sink = Recorder()
    async with running(function):
        assert "outbox.time_1" in await clients.mongo()["things"].index_information()
        await write(things, "a", 1, 2)
        await three_more_sweeps("sweeps with the broker down")
        assert tried[-1] == 1  # the document was tried, and the broker was down
        assert len(await pending(clients.mongo()["things"], "a")) == 2
        async with serving(sink, sink_port):
            await arrived(sink, 2)
            await three_more_sweeps("sweeps after the events went out")
        assert tried[-1] == 0  # nothing left to send, so nothing is sent twice
    shutdown = asyncio.get_running_loop().time()
    await asyncio.sleep(0.5)  # five intervals: a sweeper still running would begin a sweep
    assert started[-1] < shutdown, "a sweep began after shutdown"
    assert numbers(sink.requests) == [1, 2]


# --- the users function through a broker outage -----------------------------------------


async def test_user_events_survive_a_broker_outage_and_arrive_once_each(
    sink_port: int,
) -> None:
    admin = {
        "authorization": f"Bearer {mint('admin', ['user:create', 'user:update', 'user:delete'])}"
    }
    sink = Recorder()
    async with running(users.function) as client:
        created = await client.http.post(
            "/users", json={"name": "Ada", "email": "ada@example.com"}, headers=admin
        )
        assert created.status_code == 201  # the write is committed, the broker is down
        user_id = created.json()["id"]
        path = f"/users/{user_id}"
        assert (await client.http.patch(path, json={"name": "Ada L"}, headers=admin)).is_success
        assert (await client.http.delete(path, headers=admin)).status_code == 204

        document = await clients.mongo()["users"].find_one({"_id": user_id})
        assert document is not None
        assert [e["type"] for e in document[outbox.FIELD]] == [
            "kshop.user.created",
            "kshop.user.updated",
            "kshop.user.deleted",
        ]
        assert "name" not in document and "email" not in document

        async with serving(sink, sink_port):
            await arrived(sink, 3)
            await asyncio.sleep(0.5)  # more sweeps: nothing is sent twice
        assert await clients.mongo()["users"].find_one({"_id": user_id}) is None

    assert [r.headers["ce-type"] for r in sink.requests] == [
        "kshop.user.created",
        "kshop.user.updated",
        "kshop.user.deleted",
    ]
    assert len({r.headers["ce-id"] for r in sink.requests}) == 3
    assert json.loads(sink.requests[2].body) == {"id": user_id}
