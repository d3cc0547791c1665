"""At-least-once in, exactly-once effect: Knative may deliver an event twice.

The effect of an event is keyed by (function, ce-source, ce-id) in Redis, with
the semantics of Powertools' idempotency utility, made async:

- the first delivery takes an in-progress lock that expires, so a process that
  dies mid-handler does not block the event forever;
- a redelivery while the first still runs gets 429 with Retry-After (retried);
- a redelivery after success gets the stored response, byte for byte;
- the response is recorded after it goes out (see `complete`);
- the same key with another payload is refused with 400 and not run;
- a handler that fails releases the lock, so the retry runs it again.

The commands go through `pipelining`, so concurrent events share round trips.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from functions.runtime import clients, pipelining
from functions.runtime.errors import BadRequest, TooManyRequests
from functions.runtime.settings import settings

# Both scripts act only if the lock is still ours: a process whose lock expired
# must not delete or overwrite the record of the one that took over.
_COMPLETE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Lock:
    key: str
    record: str
    fingerprint: str


def fingerprint(event_type: str, subject: str | None, data: Any) -> str:
    """A hash of what the event asks for, blind to how it was encoded on the wire."""
    canonical = json.dumps(
        [event_type, subject, data], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def begin(function: str, source: str, event_id: str, digest: str) -> Lock | Response:
    """Take the lock and return it, or return the stored response of an earlier run."""
    key = clients.key("idempotency", function, source, event_id)
    # The nonce tells this holder's lock from a later one's; it need not be secret.
    nonce = format(random.getrandbits(64), "016x")
    record = json.dumps({"status": "in_progress", "hash": digest, "nonce": nonce})
    for _ in range(2):  # the second pass covers a record that expired between SET and GET
        if await pipelining.call("SET", key, record, "NX", "EX", settings().idempotency_lock_ttl):
            return Lock(key, record, digest)
        existing = await pipelining.call("GET", key)
        if existing is None:
            continue
        stored = json.loads(existing)
        if stored["hash"] != digest:
            raise BadRequest(
                "Idempotency key reused with a different payload",
                [{"source": source, "id": event_id}],
            )
        if stored["status"] == "in_progress":
            remaining = await pipelining.call("TTL", key)
            raise TooManyRequests("The same event is being handled", retry_after=max(1, remaining))
        return Response(stored["status_code"], stored["headers"], base64.b64decode(stored["body"]))
    raise TooManyRequests("The same event is being handled")


def complete(lock: Lock, response: Response) -> asyncio.Future[Any]:
    """Record the response; the future of the write, which the answer need not wait for.

    Powertools writes the record before it returns, because in Lambda the return
    is the answer. Behind Knative the answer is all the broker acts on, and
    waiting for this write would add a round trip to every event. Nor does the
    write go out on its own: it is deferrable, so under load it rides with the
    next event's lock (see pipelining). Neither loses anything:
    - the write is queued before the answer is sent, so every later command of
      this process, a duplicate's lock included, reaches Redis after it; a
      duplicate at another replica in between gets 429 and comes back;
    - if the write fails, or the process dies first, the lock stays until it
      expires and a later duplicate runs the handler again. Awaited, the same
      failure would answer 503, and the broker's retry would meet the same lock
      and run the handler again once it expired.
    """
    record = json.dumps(
        {
            "status": "complete",
            "hash": lock.fingerprint,
            "status_code": response.status,
            "headers": response.headers,
            "body": base64.b64encode(response.body).decode(),
        }
    )
    return pipelining.issue(
        "EVAL",
        *(_COMPLETE, 1, lock.key, lock.record, record, settings().idempotency_ttl),
        deferrable=True,
    )


async def release(lock: Lock) -> None:
    await pipelining.call("EVAL", _RELEASE, 1, lock.key, lock.record)
