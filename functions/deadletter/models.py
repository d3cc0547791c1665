"""What the dead-letter API answers, camelCase on the wire like every kshop API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from functions.deadletter import letters
from functions.deadletter.query import Status
from functions.deadletter.store import Document


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)


class ErrorInfo(_Model):
    destination: str | None = Field(description="The URL that failed (knativeerrordest)")
    code: int | None = Field(description="The last HTTP status (knativeerrorcode)")
    data: str | None = Field(
        description="The start of the failed response's body (knativeerrordata, decoded)"
    )
    message: str | None = Field(description="The body's `error`, when it is kshop's error shape")


class Replay(_Model):
    at: datetime
    target: str = Field(description="Where the event was sent: the broker (K_SINK)")
    status: int | None = Field(description="The broker's answer; null when it was unreachable")
    error: str | None


class DeadLetter(_Model):
    id: str
    event_id: str
    type: str
    source: str
    subject: str | None
    received_at: datetime = Field(description="When the dead-letter function stored it")
    arrival_time: str | None = Field(description="When the broker took it in (knativearrivaltime)")
    status: Status = Field(description="`replayed` once a replay was accepted by the broker")
    replayed_at: datetime | None
    error: ErrorInfo
    replays: list[Replay] = Field(description="Every replay, oldest first")

    @classmethod
    def of(cls, document: Document) -> DeadLetter:
        return cls.model_validate({**document, "id": document["_id"]})


class DeadLetterDetail(DeadLetter):
    event: dict[str, Any] = Field(description="The original event, in structured mode")

    @classmethod
    def of(cls, document: Document) -> DeadLetterDetail:
        event = letters.structured(document["original"])
        return cls.model_validate({**document, "id": document["_id"], "event": event})


class Page(_Model):
    items: list[DeadLetter]
    next: str | None = Field(description="The cursor of the next page; null on the last one")


class Purged(_Model):
    deleted: int
