"""Events as the broker carries them, and the headers that travel with them.

Knative's ingress hands the event to the channel in binary mode, and the channel
hands it to the filter in binary mode (reference, sections (a) and (b)). So by the
time a Trigger sees an event its extensions are text and its data is the bytes of
a binary-mode body. The broker keeps events in that form from the moment they
arrive, which also makes what it forwards byte-for-byte what it received.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from cloudevents.core.base import BaseCloudEvent

from functions.runtime import codec

TTL = "knativebrokerttl"
ARRIVAL_TIME = "knativearrivaltime"
# knative_error.go: the base64 text is capped at 1024 characters, the encoding of 768 bytes.
ERROR_DATA_BYTES = 768
# Knative's HTTP clients propagate W3C trace context and baggage (reference, section (f)).
TRACE_HEADERS = ("traceparent", "tracestate", "baggage")
_PASS_THROUGH = frozenset({"x-request-id", "retry-after"})
_PASS_THROUGH_PREFIXES = ("knative-", "x-b3-")
# The fraction of a second in an RFC 3339 time; Go's parser keeps nine digits of it.
_FRACTION = re.compile(r"\d\d:\d\d:\d\d[.,](\d+)")


class Timestamp(datetime):
    """An event's `time` as Knative's Go SDK holds it: to the nanosecond, in UTC.

    A datetime stops at the microsecond; the digits below it ride along. The
    CloudEvents SDK writes a time with `isoformat()` in both content modes, so a
    subscriber gets what Knative's broker sends: RFC 3339 in UTC, nanoseconds
    kept, no trailing zeros (Go's `time.RFC3339Nano` of `t.UTC()`).
    """

    nanoseconds: int  # of the second; set by at()

    @classmethod
    def at(cls, moment: datetime, written: str | None = None) -> Timestamp:
        """`moment` in UTC, with the fraction of `written`, the text it was parsed from.

        Parsers stop at the microsecond and truncate, as Go's stops at the nanosecond.
        """
        utc = moment.astimezone(UTC)
        nanoseconds = utc.microsecond * 1000
        if written and (found := _FRACTION.search(written)):
            nanoseconds = int(found.group(1)[:9].ljust(9, "0"))
        kept = cls.combine(utc.date(), utc.time().replace(microsecond=nanoseconds // 1000), UTC)
        kept.nanoseconds = nanoseconds
        return kept

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        nanoseconds = getattr(self, "nanoseconds", self.microsecond * 1000)  # made by replace()
        fraction = f".{nanoseconds:09d}".rstrip("0") if nanoseconds else ""
        day = f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
        return f"{day}{sep}{self.hour:02d}:{self.minute:02d}:{self.second:02d}{fraction}Z"


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as Go's types.Timestamp writes it (no trailing zeros)."""
    return (moment if isinstance(moment, Timestamp) else Timestamp.at(moment)).isoformat()


def _text(value: Any) -> str:
    """An attribute as binary mode writes it; decode() lets no other kind of value through."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return timestamp(value)
    return str(value)


def _data(decoded: BaseCloudEvent) -> bytes | None:
    """A structured event's data as the body binary mode would carry."""
    data = decoded.get_data()
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str) and not codec.is_json(decoded.get_datacontenttype()):
        return data.encode()
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """Whether a message says it is a CloudEvent, in any mode, whatever its body."""
    kind = codec.media_type(headers)
    return "ce-specversion" in headers or kind in (codec.STRUCTURED, codec.BATCH)


def carried(headers: Mapping[str, str], body: bytes) -> BaseCloudEvent:
    """Decode an HTTP message into the carried form; BadRequest when it is not a CloudEvent."""
    structured = codec.is_structured(headers)
    # Knative's SDK keeps a binary-mode body as bytes and never parses it (reference,
    # section (a)): only the attributes are checked, and JSON that is not JSON passes.
    decoded = codec.decode(headers, body if structured else b"")
    attributes = {
        name: value if name in codec.CONTEXT_ATTRIBUTES else _text(value)
        for name, value in decoded.get_attributes().items()
    }
    if (time := decoded.get_time()) is not None:
        written = json.loads(body)["time"] if structured else unquote(headers["ce-time"])
        attributes["time"] = Timestamp.at(time, written)
    data = _data(decoded) if structured else body or None
    return codec.make(attributes, data)


def encode(carried_event: BaseCloudEvent, structured: bool) -> tuple[dict[str, str], bytes]:
    """The HTTP headers and body that deliver a carried event in either content mode."""
    if not structured:
        return codec.encode(carried_event)
    data: Any = carried_event.get_data()
    if isinstance(data, bytes):
        try:
            text = data.decode()
            data = json.loads(text) if codec.is_json(carried_event.get_datacontenttype()) else text
        except ValueError:  # not UTF-8, or not JSON after all: stays data_base64
            pass
    return codec.encode(codec.make(dict(carried_event.get_attributes()), data), structured=True)


def view(carried_event: BaseCloudEvent) -> dict[str, str]:
    """Every attribute the event has, as text: what filters compare (section (b))."""
    return {name: _text(value) for name, value in carried_event.get_attributes().items()}


def with_attributes(
    carried_event: BaseCloudEvent,
    add: Mapping[str, str],
    *,
    drop: Iterable[str] = (),
    overwrite: bool = True,
) -> BaseCloudEvent:
    """A copy with attributes added and others removed."""
    attributes = {k: v for k, v in carried_event.get_attributes().items() if k not in drop}
    for name, value in add.items():
        if overwrite or name not in attributes:
            attributes[name] = value
    return codec.make(attributes, carried_event.get_data())


def error_attributes(destination: str, status: int, failure: bytes) -> dict[str, str]:
    """knativeerror* for a failed delivery (section (d)); an empty body gives empty data."""
    # Truncate before encoding: Knative's own code has overrun its buffer here.
    encoded = base64.b64encode(failure[:ERROR_DATA_BYTES]).decode()
    return {
        "knativeerrordest": destination,
        "knativeerrorcode": str(status),
        "knativeerrordata": encoded,
    }


def pass_through(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers Knative forwards hop to hop (utils/headers.go `PassThroughHeaders`)."""
    return {
        name: value
        for name, value in headers.items()
        if name in _PASS_THROUGH or name.startswith(_PASS_THROUGH_PREFIXES)
    }


def travelling(headers: Mapping[str, str]) -> dict[str, str]:
    """Pass-through headers plus the W3C trace context, which Knative's clients propagate."""
    trace = {name: headers[name] for name in TRACE_HEADERS if name in headers}
    return pass_through(headers) | trace
