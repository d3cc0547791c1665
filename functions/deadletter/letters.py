"""A failed event as the dead-letter store keeps it.

The broker's copy carries what the broker added on the way: `knativeerror*`
(why delivery failed), `knativearrivaltime` and `knativebrokerttl`. Those are
read into the record and taken off the original, which is kept in binary
wire form so a replay sends what the producer sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from functions.runtime import codec
from functions.runtime.codec import CloudEvent
from functions.runtime.events import Event

ARRIVAL = "knativearrivaltime"
_ADDED = frozenset({ARRIVAL, "knativebrokerttl"})


def added_by_broker(attribute: str) -> bool:
    return attribute.startswith("knativeerror") or attribute in _ADDED


def original(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """The event as its producer sent it, without the broker's attributes, in binary mode."""
    attributes = {k: v for k, v in event.get_attributes().items() if not added_by_broker(k)}
    return codec.encode(codec.make(attributes, event.get_data()))


def _error_data(encoded: str | None) -> str | None:
    """knativeerrordata is base64 of at most the first 768 bytes of the response body."""
    if encoded is None:
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return encoded  # a sender that did not encode it: keep what came
    # The cut at 768 bytes can split a character; replace it rather than fail.
    return raw.decode("utf-8", errors="replace")


def _message(data: str | None) -> str | None:
    """The `error` of kshop's error shape, when the body is one, for a one-line view."""
    try:
        parsed = json.loads(data or "")
    except ValueError:
        return None
    message = parsed.get("error") if isinstance(parsed, dict) else None
    return message if isinstance(message, str) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _code(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def key(source: str, event_id: str, destination: str | None, arrival: str | None) -> str:
    """One record per failed delivery.

    A redelivered dead letter (same event, destination and broker arrival) gets
    the same key and is stored once. The same event failing again after a
    replay passed the broker again, so it has a new arrival and a record of its
    own. Without an arrival time nothing tells a redelivery apart.
    """
    if arrival is None:
        return uuid.uuid4().hex[:24]
    identity = "\0".join((source, event_id, destination or "", arrival))
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


def letter(event: Event[Any], received_at: datetime) -> dict[str, Any]:
    """The MongoDB document for one dead letter."""
    extensions = event.extensions
    destination = _text(extensions.get("knativeerrordest"))
    arrival = _text(extensions.get(ARRIVAL))
    data = _error_data(_text(extensions.get("knativeerrordata")))
    assert event.cloudevent is not None, "the runtime hands every handler its CloudEvent"
    wire_headers, wire_body = original(event.cloudevent)
    return {
        "_id": key(event.source, event.id, destination, arrival),
        "eventId": event.id,
        "type": event.type,
        "source": event.source,
        "subject": event.subject,
        "receivedAt": received_at,
        "arrivalTime": arrival,
        "error": {
            "destination": destination,
            "code": _code(extensions.get("knativeerrorcode")),
            "data": data,
            "message": _message(data),
        },
        "status": "failed",
        "replays": [],
        "replayedAt": None,
        "original": {"headers": wire_headers, "body": wire_body},
    }
