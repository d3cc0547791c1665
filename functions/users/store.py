"""Users in MongoDB, read through a Redis cache, each change announced through the outbox.

Every change is one single-document write that also pushes its event into the
document's outbox, so the change and its event are committed together.

The cache holds each user with the document's version. A fill or a write
replaces an entry only with a newer version (an optimistic check-and-set), so
a read that raced a write can never put the old user back. Reads survive a
Redis outage by going to MongoDB; writes first drop the cached entry and fail
(503) before changing anything if Redis is unreachable, so no stale entry
outlives a change.

A deleted user's personal fields are unset at once, and the document itself is
deleted as soon as its outbox has been sent (see outbox.RETIRED).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError
from redis.exceptions import RedisError

from functions.runtime import Conflict, NotFound, clients, outbox
from functions.runtime.state import State
from functions.users.events import UserCreated, UserDeleted, UserUpdated
from functions.users.model import NewUser, User, UserChanges, email_key, new_id

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

COLLECTION = "users"
CACHE_SECONDS = 300
ACTIVE = "active"
# Optimistic retries when two updates of one user race.
UPDATE_ATTEMPTS = 5

log = logging.getLogger("kshop.users")


class Cached(BaseModel):
    """A cache entry; `user` is None once the user is deleted, fencing off stale fills."""

    version: int
    user: User | None


cache = State(Cached, "users", "cache", ttl=CACHE_SECONDS)


def collection() -> AsyncCollection[dict[str, Any]]:
    return clients.mongo()[COLLECTION]


async def create_indexes() -> None:
    await collection().create_index("emailKey", unique=True)


@contextmanager
def _unique_email() -> Iterator[None]:
    """A write that would give two users one email is a 409."""
    try:
        yield
    except PyMongoError as exc:
        # FerretDB reports a unique-index violation on update as InternalError 1, not 11000.
        if isinstance(exc, DuplicateKeyError) or (
            isinstance(exc, OperationFailure) and "UNIQUE constraint failed" in str(exc)
        ):
            details = [{"field": "email", "message": "is already in use"}]
            raise Conflict("Email already in use", details) from None
        raise


def _user(document: dict[str, Any]) -> User:
    return User(
        id=document["_id"],
        name=document["name"],
        email=document["email"],
        status=document["status"],
        created_at=document["createdAt"],
        updated_at=document["updatedAt"],
    )


def _newest(candidate: Cached) -> Callable[[Cached | None], Cached | None]:
    def change(current: Cached | None) -> Cached | None:
        return candidate if current is None or current.version < candidate.version else current

    return change


async def remember(user_id: str, candidate: Cached) -> None:
    try:
        await cache.update(user_id, _newest(candidate))
    except (RedisError, ValidationError, Conflict) as exc:
        log.warning("users cache not updated: %s", exc, extra={"user": user_id})


async def create(new: NewUser) -> User:
    now = outbox.now()
    user = User(
        id=new_id(),
        name=new.name,
        email=new.email,
        status=ACTIVE,
        created_at=now,
        updated_at=now,
    )
    event = UserCreated(id=user.id, name=user.name, email=user.email)
    document = {
        "_id": user.id,
        "name": user.name,
        "email": user.email,
        "emailKey": email_key(user.email),
        "status": ACTIVE,
        "createdAt": now,
        "updatedAt": now,
        "version": 1,
        outbox.FIELD: [outbox.entry(event, subject=user.id)],
    }
    with _unique_email():
        await collection().insert_one(document)
    return user


async def get(user_id: str) -> User:
    try:
        cached = await cache.get(user_id)
    except (RedisError, ValidationError) as exc:
        log.warning("users cache unreadable, reading MongoDB: %s", exc)
        cached = None
    if cached is not None:
        if cached.user is None:
            raise NotFound("User not found")
        return cached.user
    document = await collection().find_one({"_id": user_id, "status": ACTIVE})
    if document is None:
        raise NotFound("User not found")
    user = _user(document)
    await remember(user_id, Cached(version=document["version"], user=user))
    return user


async def update(user_id: str, changes: UserChanges) -> User:
    """Apply the fields that differ; a change that changes nothing writes nothing."""
    for _ in range(UPDATE_ATTEMPTS):
        document = await collection().find_one({"_id": user_id, "status": ACTIVE})
        if document is None:
            raise NotFound("User not found")
        current = _user(document)
        changed = {k: v for k, v in changes.given().items() if getattr(current, k) != v}
        if not changed:
            return current
        await cache.delete(user_id)
        now = outbox.now()
        fields: dict[str, Any] = {**changed, "updatedAt": now}
        if "email" in changed:
            fields["emailKey"] = email_key(changed["email"])
        event = UserUpdated(id=user_id, **changed)
        with _unique_email():
            result = await collection().update_one(
                {"_id": user_id, "status": ACTIVE, "version": document["version"]},
                {
                    "$set": fields,
                    "$inc": {"version": 1},
                    "$push": {outbox.FIELD: outbox.entry(event, subject=user_id)},
                },
            )
        if result.matched_count:
            user = current.model_copy(update={**changed, "updated_at": now})
            await remember(user_id, Cached(version=document["version"] + 1, user=user))
            return user
    raise Conflict("The user changed concurrently; try again")


async def delete(user_id: str) -> None:
    await cache.delete(user_id)
    document = await collection().find_one_and_update(
        {"_id": user_id, "status": ACTIVE},
        {
            # The unique index needs a value; this one is no one's address.
            "$set": {
                "status": "deleted",
                "emailKey": f"deleted:{user_id}",
                "updatedAt": outbox.now(),
                outbox.RETIRED: True,
            },
            "$unset": {"name": "", "email": "", "createdAt": ""},
            "$inc": {"version": 1},
            "$push": {outbox.FIELD: outbox.entry(UserDeleted(id=user_id), subject=user_id)},
        },
        return_document=ReturnDocument.AFTER,
    )
    if document is None:
        raise NotFound("User not found")
    await remember(user_id, Cached(version=document["version"], user=None))


async def page(after: str | None, limit: int) -> tuple[list[User], str | None]:
    """Active users in id (so creation) order; the last id when there are more."""
    query: dict[str, Any] = {"status": ACTIVE}
    if after is not None:
        query["_id"] = {"$gt": after}
    found = collection().find(query).sort("_id", 1).limit(limit + 1)
    users = [_user(document) async for document in found]
    more = len(users) > limit
    return users[:limit], (users[limit - 1].id if more else None)
