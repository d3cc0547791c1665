"""A transactional outbox in the document itself: no event is lost when the broker is down.

The state change and the event that announces it are written in ONE
single-document update, so both happen or neither does (no transactions needed,
which FerretDB lacks):

    await users.update_one(
        {"_id": user_id, ...},
        {"$set": {...}, "$push": {"outbox": outbox.entry(UserUpdated(...), subject=user_id)}},
    )
    await outbox.flush(function, users, user_id)

`flush` publishes the document's pending entries in order and removes each
once the broker has it. What it could not send stays, and the sweeper that
`install` starts sends it later. Each entry's event id is fixed when the entry
is written, so an event sent twice (a crash between publish and removal, or a
sweeper racing a flush) is a duplicate that consumers' idempotency suppresses:
delivery is at least once, the effect once.

A document that should disappear once its events are out (personal data, for
instance) sets `RETIRED: True` in the same write; flush deletes it when its
outbox is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from functions.runtime import clients, tracing
from functions.runtime.errors import Unavailable
from functions.runtime.events import CATALOGUE, EventData
from functions.runtime.settings import settings

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

    from functions.runtime.function import Function

    Collection = AsyncCollection[dict[str, Any]]

FIELD = "outbox"
RETIRED = "outboxRetired"
# Entries are found by their time through this index: the sweep never scans.
INDEX = f"{FIELD}.time"
BATCH = 100

log = logging.getLogger("kshop.outbox")


def now() -> datetime:
    """The current time at MongoDB's precision, so a value reads back equal to what was written."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def entry(data: EventData, *, subject: str | None = None) -> dict[str, Any]:
    """An outbox entry to `$push` in the same update as the change it announces."""
    import uuid_utils

    return {
        "id": str(uuid_utils.uuid7()),
        "type": data.event_type,
        "subject": subject,
        "data": data.model_dump(mode="json", by_alias=True),
        "time": now(),
        # The request that wrote the entry continues its trace when the event goes out.
        **tracing.current_traceparent(),
    }


async def flush(function: Function, collection: Collection, document_id: Any) -> None:
    """Publish the document's pending entries in order; what fails stays for the sweeper.

    Never raises: the state change is already committed, and its events are safe
    in the document whatever happens here.
    """
    try:
        await _flush(function, collection, document_id)
    except Exception:
        log.exception("outbox flush failed", extra={"document": str(document_id)})


async def _flush(function: Function, collection: Collection, document_id: Any) -> bool:
    """False when the broker is unavailable, so a sweep can stop knocking."""
    document = await collection.find_one({"_id": document_id}, {FIELD: 1, RETIRED: 1})
    if document is None:
        return True
    for item in document.get(FIELD, []):
        try:
            await _publish(function, item)
        except Unavailable as exc:
            log.warning("broker unavailable, events kept in the outbox: %s", exc)
            return False
        except Exception:
            # An event the broker refuses blocks only its own document's outbox, in
            # order, where it is visible; dropping it would lose it silently.
            log.exception("event refused, kept in the outbox", extra={"event": item.get("id")})
            return True
        # The whole entry, not a condition on its id: FerretDB's $pull matches values only.
        await collection.update_one({"_id": document_id}, {"$pull": {FIELD: item}})
    if document.get(RETIRED):
        await collection.delete_one({"_id": document_id, RETIRED: True, FIELD: {"$size": 0}})
    return True


async def _publish(function: Function, item: dict[str, Any]) -> None:
    model = CATALOGUE[item["type"]]
    span = tracing.tracer().start_as_current_span(
        f"{item['type']} publish",
        context=tracing.parent(
            {"traceparent": item.get("traceparent"), "tracestate": item.get("tracestate")}
        ),
        kind=trace.SpanKind.PRODUCER,
    )
    with span:
        await function.publish(
            model.model_validate(item["data"]),
            subject=item.get("subject"),
            id=item["id"],
            time=item["time"],
        )


async def sweep(function: Function, collection: Collection, older_than: float) -> int:
    """Flush every document with an entry older than `older_than` seconds; how many were tried.

    Younger entries are left to the flush of the request that wrote them.
    """
    tried = 0
    cutoff = now() - timedelta(seconds=older_than)
    query: dict[str, Any] = {INDEX: {"$lte": cutoff}}
    while True:
        # Paged by id, so a document whose event the broker refuses is not met again.
        found = collection.find(query, {"_id": 1}).sort("_id", 1).limit(BATCH)
        batch = [document["_id"] async for document in found]
        for document_id in batch:
            tried += 1
            if not await _flush(function, collection, document_id):
                return tried
        if len(batch) < BATCH:
            return tried
        query = {INDEX: {"$lte": cutoff}, "_id": {"$gt": batch[-1]}}


def install(function: Function, collection_name: str, interval: float | None = None) -> None:
    """Index the outbox at startup and sweep it every `interval` seconds until shutdown.

    `interval` defaults to OUTBOX_INTERVAL; an entry is swept once it is that old.
    """
    sweeper: asyncio.Task[None] | None = None

    async def run(collection: Collection, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await sweep(function, collection, every)
            except Exception:
                # MongoDB down, most likely: the next round tries again.
                log.exception("outbox sweep failed")

    @function.on_startup
    async def start() -> None:
        nonlocal sweeper
        collection = clients.mongo()[collection_name]
        await collection.create_index(INDEX)
        sweeper = asyncio.create_task(run(collection, interval or settings().outbox_interval))

    @function.on_shutdown
    async def stop() -> None:
        nonlocal sweeper
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            sweeper = None
