"""A failed event as the dead-letter store keeps it.

The broker's copy carries what the broker added on the way: `knativeerror*`
(why delivery failed), `knativearrivaltime` and `knativebrokerttl`. Those are
read into the record and taken off the original, which is kept in binary
wire form so a replay sends what the producer sent.

This is the last stop of a failed event: an answer other than 2xx loses it.
So whatever the broker's attributes hold is read leniently, and the original
is read back as it was stored, never judged again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, NoReturn
from urllib.parse import unquote

import pydantic_core
from cloudevents.core.base import BaseCloudEvent
from pydantic import Field, TypeAdapter, ValidationError

from functions.runtime import codec
from functions.runtime.events import Event

ARRIVAL = "knativearrivaltime"
_ADDED = frozenset({ARRIVAL, "knativebrokerttl"})


def added_by_broker(attribute: str) -> bool:
    return attribute.startswith("knativeerror") or attribute in _ADDED


def original(event: BaseCloudEvent) -> tuple[dict[str, str], bytes]:
    """The event as its producer sent it, without the broker's attributes, in binary mode."""
    attributes = {k: v for k, v in event.get_attributes().items() if not added_by_broker(k)}
    return codec.encode(codec.make(attributes, event.get_data()))


def structured(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored original (its headers and body) as a structured-mode event, to read.

    Read from the wire form, not decoded and checked again: it was a valid
    event when it came, and must stay readable if the rules tighten later.
    """
    headers: Mapping[str, str] = stored["headers"]
    body: bytes = stored["body"]
    event: dict[str, Any] = {
        name.removeprefix("ce-"): unquote(value)  # binary mode percent-encodes attributes
        for name, value in headers.items()
        if name.startswith("ce-")
    }
    if "content-type" in headers:
        event["datacontenttype"] = headers["content-type"]
    if body:
        event |= _data(body, codec.media_type(headers))
    return event


def _data(body: bytes, media_type: str) -> dict[str, Any]:
    """`data` when the body is what its media type says, JSON or text; else `data_base64`.

    Bytes that are not the JSON their type claims (binary data sent in
    structured mode without a datacontenttype) are shown as the bytes they are.
    """
    try:
        if not codec.is_json(media_type):
            return {"data": body.decode()}
        value = json.loads(body, parse_constant=_not_json)
        # pydantic writes at most ~255 levels of nesting (json.loads reads deeper),
        # and the answer puts the data two levels down.
        pydantic_core.to_json({"event": {"data": value}})
        return {"data": value}
    except (ValueError, RecursionError):
        return {"data_base64": base64.b64encode(body).decode()}


def _not_json(constant: str) -> NoReturn:
    # json.loads takes NaN and Infinity, which the answer would turn into null.
    raise ValueError(f"{constant} is not JSON")


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
    except (ValueError, RecursionError):
        return None
    message = parsed.get("error") if isinstance(parsed, dict) else None
    return message if isinstance(message, str) else None


def _text(value: Any) -> str | None:
    """An attribute's value as binary mode carries it: text.

    A structured event may hold a Boolean or a number there, or anything JSON
    can: JSON text keeps it whole, where str() would write True or a Python repr.
    """
    return value if value is None or isinstance(value, str) else json.dumps(value)


# Lax: binary mode carries the code as text ("500"), structured mode as an integer.
_HTTP_STATUS = TypeAdapter(Annotated[int, Field(ge=100, le=599)])


def _code(value: Any) -> int | None:
    """knativeerrorcode as an HTTP status; anything else in it tells nothing."""
    try:
        return _HTTP_STATUS.validate_python(value)
    except ValidationError:
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
