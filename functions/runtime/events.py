"""Typed event data, and the event a handler receives.

Each kind of event has one pydantic model that names its CloudEvent type:

    class UserCreated(EventData, type="kshop.user.created"):
        id: str

Producers and consumers share that model, and the catalogue is built from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from cloudevents.core.base import BaseCloudEvent

T = TypeVar("T")

CATALOGUE: dict[str, type[EventData]] = {}


class EventData(BaseModel):
    """The data of one CloudEvent type. Unknown fields are refused, not dropped.

    Fields are snake_case in Python and camelCase on the wire.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, validate_by_name=True
    )
    event_type: ClassVar[str] = ""

    def __init_subclass__(cls, type: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if type:
            if type in CATALOGUE:
                raise TypeError(f"event type {type!r} is already modelled by {CATALOGUE[type]}")
            cls.event_type = type
            CATALOGUE[type] = cls


@dataclass(frozen=True, slots=True)
class Event(Generic[T]):
    """What a handler receives: the context attributes, and data parsed into its model."""

    id: str
    source: str
    type: str
    data: T
    subject: str | None = None
    time: datetime | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)
    # The event as decoded, every attribute included, for sinks that keep or forward it whole.
    cloudevent: BaseCloudEvent | None = field(default=None, repr=False, compare=False)
