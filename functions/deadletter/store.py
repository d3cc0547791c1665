"""Dead letters in MongoDB: one document per failed delivery, found newest first.

Pages use a cursor on (receivedAt, _id), which never change once stored, so
a page is stable while new failures arrive.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from functions.deadletter.query import Query, utc
from functions.runtime import clients
from functions.runtime.errors import BadRequest

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

Document = dict[str, Any]
COLLECTION = "deadletters"
_ORDER = [("receivedAt", DESCENDING), ("_id", DESCENDING)]
_indexed: set[str] = set()


async def _collection() -> AsyncCollection[Document]:
    database = clients.mongo()
    collection = database[COLLECTION]
    if database.name not in _indexed:
        # Made on first use rather than at start-up, so a function that starts
        # while MongoDB is down still comes up and answers 503 until it is back.
        await collection.create_index(_ORDER)
        await collection.create_index([("type", 1), ("receivedAt", DESCENDING)])
        await collection.create_index([("error.code", 1), ("receivedAt", DESCENDING)])
        _indexed.add(database.name)
    return collection


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last record's (receivedAt, _id)."""

    received_at: datetime
    id: str

    def token(self) -> str:
        raw = json.dumps([self.received_at.isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            at, id_ = json.loads(raw)
            return cls(utc(datetime.fromisoformat(at)), str(id_))
        except (ValueError, TypeError, RecursionError):
            raise BadRequest(
                "Validation failed", [{"field": "cursor", "message": "is not a cursor"}]
            ) from None

    def filter(self) -> Document:
        return {
            "$or": [
                {"receivedAt": {"$lt": self.received_at}},
                {"receivedAt": self.received_at, "_id": {"$lt": self.id}},
            ]
        }


async def save(letter: Document) -> bool:
    """Store a dead letter; False when this very delivery was stored before."""
    try:
        await (await _collection()).insert_one(letter)
    except DuplicateKeyError:
        return False
    return True


async def page(
    query: Query, limit: int, after: Cursor | None
) -> tuple[list[Document], Cursor | None]:
    found = query.filter()
    if after is not None:
        found = {"$and": [found, after.filter()]}
    collection = await _collection()
    # One more than asked says whether there is a next page.
    documents = await collection.find(found).sort(_ORDER).limit(limit + 1).to_list()
    if len(documents) <= limit:
        return documents, None
    last = documents[limit - 1]
    return documents[:limit], Cursor(last["receivedAt"], last["_id"])


async def get(id: str) -> Document | None:
    return await (await _collection()).find_one({"_id": id})


async def record_replay(id: str, outcome: Document, accepted: bool) -> Document | None:
    """Append a replay's outcome; an accepted one marks the letter replayed."""
    update: Document = {"$push": {"replays": outcome}}
    if accepted:
        update["$set"] = {"status": "replayed", "replayedAt": outcome["at"]}
    return await (await _collection()).find_one_and_update(
        {"_id": id}, update, return_document=ReturnDocument.AFTER
    )


async def delete(id: str) -> bool:
    result = await (await _collection()).delete_one({"_id": id})
    return result.deleted_count == 1


async def purge(query: Query) -> int:
    result = await (await _collection()).delete_many(query.filter())
    return result.deleted_count
