"""CloudEvents over HTTP, in and out, on the SDK's 2.x `cloudevents.core` API.

Decoding is strict where Knative's broker is strict (reference, section (a)):
batch mode, a missing or invalid attribute and a structured event that is not
JSON are all 400. The SDK is forgiving in places Knative is not, so those
checks come first. A binary-mode body is data, kept as its bytes when it is not
what its type says: whether that is an error is for the handler's model to say.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured
from cloudevents.core.bindings.http import to_binary as _to_binary
from cloudevents.core.bindings.http import to_structured as _to_structured
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v03.event import CloudEvent as CloudEvent03
from cloudevents.core.v1.event import CloudEvent

from functions.runtime.errors import BadRequest

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
# 1.0's optional attributes, and 0.3's names for its schema and its data's encoding.
CONTEXT_ATTRIBUTES = frozenset(
    {*REQUIRED, "subject", "time", "datacontenttype", "dataschema"}
    | {"schemaurl", "datacontentencoding"}
)
# Knative's Go SDK reads both, and its broker carries a 0.3 event as it came.
# kshop's own events are 1.0. (The SDK's HTTP binding loads the 0.3 class anyway.)
_CLASSES: dict[str, type[BaseCloudEvent]] = {"1.0": CloudEvent, "0.3": CloudEvent03}
_FORMAT = JSONFormat()
_JSON_TYPES = JSONFormat.JSON_CONTENT_TYPE_PATTERN
# Attributes the Go SDK's Validate() trims before it checks they are not empty.
_NOT_BLANK = ("id", "source", "type", "subject")
# RFC 2046 as Go's mime.ParseMediaType reads it: type[/subtype], then parameters.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(
    rf'\s*{_TOKEN}(/{_TOKEN})?\s*(;\s*{_TOKEN}\s*=\s*({_TOKEN}|"([^"\\]|\\.)*")\s*)*;?\s*'
)
# A JSON escape of a UTF-16 surrogate. A pair decodes to one character; a lone one
# stays in the string, which is then not text: it cannot be encoded, stored or sent.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

__all__ = [
    "BATCH",
    "CONTEXT_ATTRIBUTES",
    "STRUCTURED",
    "decode",
    "encode",
    "is_json",
    "is_structured",
    "make",
]


def media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(content_type: str | None) -> bool:
    """Whether data of this type is JSON; an event without a datacontenttype holds JSON."""
    return _JSON_TYPES.match(content_type or "application/json") is not None


def is_structured(headers: Mapping[str, str]) -> bool:
    return media_type(headers) == STRUCTURED


def make(attributes: dict[str, Any], data: Any) -> BaseCloudEvent:
    """Build an event exactly as received, of its spec version.

    The SDK fills in a missing `id` and `time`; an event without an id must be
    refused, and one without a time must not gain one on its way through.
    """
    problems = _problems(attributes)
    if problems:
        raise BadRequest("Invalid CloudEvent", problems)
    had_time = "time" in attributes
    try:
        event = _CLASSES[attributes["specversion"]](attributes, data)
    except CloudEventValidationError as exc:
        raise BadRequest(
            "Invalid CloudEvent",
            [
                {"attribute": name, "message": "; ".join(str(e) for e in errors)}
                for name, errors in exc.errors.items()
            ],
        ) from None
    if not had_time:
        # CloudEvent keeps the very dict it was given, so this undoes the default.
        attributes.pop("time", None)
    return event


def _problems(attributes: dict[str, Any]) -> list[dict[str, str]]:
    """What is wrong with the attributes, each named; extensions are normalised on the way."""
    missing = [name for name in REQUIRED if name not in attributes]
    if missing:
        return [{"attribute": name, "message": "is required"} for name in missing]
    problems = []
    if attributes["specversion"] not in _CLASSES:
        message = f"must be one of {sorted(_CLASSES, reverse=True)}"
        problems.append({"attribute": "specversion", "message": message})
    for name in _NOT_BLANK:
        if name in attributes and not str(attributes[name]).strip():
            problems.append({"attribute": name, "message": "must not be blank"})
    content_type = attributes.get("datacontenttype")
    if isinstance(content_type, str) and not _MEDIA_TYPE.fullmatch(content_type):
        problems.append(
            {"attribute": "datacontenttype", "message": "must be an RFC 2046 media type"}
        )
    for name, value in list(attributes.items()):
        if isinstance(value, str) or name in CONTEXT_ATTRIBUTES:
            continue  # every binary-mode extension is text
        if value is None:  # JSON null: the attribute is absent
            del attributes[name]
            continue
        if isinstance(value, float) and value.is_integer():
            value = attributes[name] = int(value)  # 2.0 in JSON is the integer 2, as Go reads it
        if not _is_extension_value(value):
            message = "must be a string, a boolean or a 32-bit integer"
            problems.append({"attribute": name, "message": message})
    return problems


def _is_extension_value(value: Any) -> bool:
    """CloudEvents' types for an extension in JSON (Go's types.Validate): no arrays or objects."""
    if isinstance(value, bool | str | datetime):
        return True
    return isinstance(value, int) and -(2**31) <= value < 2**31


def decode(headers: Mapping[str, str], body: bytes) -> BaseCloudEvent:
    """One CloudEvent from an HTTP request or response; BadRequest when it is not one.

    `headers` must have lower-case names.
    """
    kind = media_type(headers)
    if kind == BATCH:
        raise BadRequest("Batch mode is not supported: send one event per request")
    event: BaseCloudEvent
    try:
        if kind == STRUCTURED:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise BadRequest("Invalid CloudEvent: a structured event is a JSON object")
            event = _decode_structured(body, document)
        elif "ce-specversion" in headers:
            event = _decode_binary(headers, body)
        else:
            raise BadRequest(
                "Not a CloudEvent: send binary mode (ce-* headers) or structured mode "
                f"(Content-Type: {STRUCTURED})"
            )
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("Invalid JSON") from None
    except RecursionError:
        raise BadRequest("Invalid JSON", ["nested too deeply"]) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRequest("Invalid CloudEvent", [str(exc)]) from None
    if _SURROGATE_ESCAPE.search(body) and not _is_text([event.get_attributes(), event.get_data()]):
        raise BadRequest("Invalid JSON", ["a string holds a lone UTF-16 surrogate"])
    return event


def _decode_binary(headers: Mapping[str, str], body: bytes) -> BaseCloudEvent:
    """Binary mode: the data as the SDK reads it, else the body's bytes as they came.

    Knative carries a binary-mode body without parsing it, so a body that is not
    what its type says is still a CloudEvent: refused by the handlers that need
    JSON (their model, with 400), kept as it is by those that do not, such as
    the dead-letter sink, which must lose nothing.
    """
    try:
        event = from_binary(HTTPMessage(dict(headers), body), _FORMAT, make)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _with_body(headers, body)
    if isinstance(event.get_data(), str) and is_json(media_type(headers)):
        try:
            json.loads(body)  # a JSON string, or bad JSON the SDK kept as text?
        except ValueError:
            return _with_body(headers, body)  # as text it would be re-encoded as a JSON string
    return event


def _with_body(headers: Mapping[str, str], body: bytes) -> BaseCloudEvent:
    attributes = from_binary(HTTPMessage(dict(headers), b""), _FORMAT, make).get_attributes()
    return make(dict(attributes), body)


def _is_text(value: Any) -> bool:
    """Whether every string in a JSON value (keys too) can be encoded as UTF-8."""
    pending = [value]
    while pending:  # not recursive: the value may be as deep as the parser allows
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _decode_structured(body: bytes, document: dict[str, Any]) -> BaseCloudEvent:
    for name in ("time", "datacontenttype", "subject", "dataschema", "schemaurl"):
        if name in document and not isinstance(document[name], str):
            raise BadRequest(
                "Invalid CloudEvent", [{"attribute": name, "message": "must be a string"}]
            )
    if "data_base64" in document:
        # The SDK decodes it leniently, dropping what is not base64; Knative refuses it.
        try:
            base64.b64decode(document["data_base64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise BadRequest(
                "Invalid CloudEvent", [{"attribute": "data_base64", "message": "must be base64"}]
            ) from None
    return from_structured(HTTPMessage({}, body), _FORMAT, make)


def encode(event: BaseCloudEvent, structured: bool = False) -> tuple[dict[str, str], bytes]:
    message = (_to_structured if structured else _to_binary)(event, _FORMAT)
    if not structured:
        # The SDK writes a Boolean with str(), "True"; the HTTP binding's text is "true".
        for name, value in event.get_attributes().items():
            if isinstance(value, bool):
                message.headers[f"ce-{name}"] = "true" if value else "false"
    data = event.get_data()
    if structured or data is None or isinstance(data, bytes | dict):
        return message.headers, message.body
    # The SDK writes any other JSON value (a list, a string, true) with str(); JSON
    # data must stay JSON on the wire.
    if is_json(event.get_datacontenttype()):
        return message.headers, json.dumps(data).encode()
    return message.headers, message.body
