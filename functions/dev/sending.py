"""`kshop send`: build a CloudEvent from the command line, check it, and POST it.

The event goes through the same codec as the functions' own, and is decoded
again before it is sent: what the broker would refuse is refused here, with
the reason, before anything leaves the machine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.v1.event import CloudEvent

from functions.runtime import codec
from functions.runtime.errors import BadRequest

# Lower-case letters and digits (CloudEvents 1.0, "Attribute Naming Convention").
ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]+$")
# Attributes with an option of their own, or that only the encoder may set.
_OWN = frozenset({"id", "source", "type", "specversion", "subject", "data", "datacontenttype"})


class InvalidEvent(ValueError):
    """The event would be refused: the message says why."""


def extensions(pairs: Iterable[str]) -> dict[str, str]:
    """`--ext name=value` options as attributes."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InvalidEvent(f"--ext {pair!r}: write it as name=value")
        if not ATTRIBUTE_NAME.match(name):
            raise InvalidEvent(
                f"--ext {pair!r}: attribute names are lower-case letters and digits only"
            )
        if name in _OWN:
            raise InvalidEvent(f"--ext {pair!r}: {name} has an option of its own")
        if name in found:
            raise InvalidEvent(f"--ext {pair!r}: {name} is given twice")
        found[name] = value
    return found


def parse_data(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidEvent(f"{origin} is not JSON: {exc}") from None


def build(
    type: str,
    source: str,
    id: str,
    subject: str | None = None,
    data: Any = None,
    extra: Mapping[str, str] | None = None,
) -> CloudEvent:
    attributes: dict[str, Any] = {"specversion": "1.0", "type": type, "source": source, "id": id}
    for name, value in (extra or {}).items():
        attributes[name] = _time(value) if name == "time" else value
    if subject is not None:
        attributes["subject"] = subject
    if data is not None:
        attributes["datacontenttype"] = "application/json"
    try:
        return CloudEvent(attributes, data)
    except CloudEventValidationError as exc:
        reasons = "; ".join(str(e) for errors in exc.errors.values() for e in errors)
        raise InvalidEvent(reasons) from None


def _time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"time {value!r} is not an RFC 3339 timestamp") from None


def encode(event: BaseCloudEvent, structured: bool) -> tuple[dict[str, str], bytes]:
    """The HTTP request for the event, checked the way the broker checks it."""
    headers, body = codec.encode(event, structured=structured)
    try:
        codec.decode(headers, body)
    except BadRequest as exc:
        raise InvalidEvent("; ".join([exc.message, *map(str, exc.details)])) from None
    return headers, body


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    reply: BaseCloudEvent | None
    body: bytes

    def describe(self) -> str:
        """The status line, then the reply event or the body, readable."""
        lines = [f"{self.status} {self.reason}"]
        if self.reply is not None:
            _, structured = codec.encode(self.reply, structured=True)
            lines.append(json.dumps(json.loads(structured), indent=2))
        elif self.body:
            try:
                lines.append(json.dumps(json.loads(self.body), indent=2))
            except ValueError:
                lines.append(self.body.decode(errors="replace"))
        return "\n".join(lines)


def send(url: str, headers: Mapping[str, str], body: bytes, timeout: float = 30) -> Answer:
    response = httpx.post(url, headers=dict(headers), content=body, timeout=timeout)
    reply = None
    if response.content:
        try:
            reply = codec.decode(
                {k.lower(): v for k, v in response.headers.items()}, response.content
            )
        except BadRequest:
            reply = None
    return Answer(response.status_code, response.reason_phrase, reply, response.content)
