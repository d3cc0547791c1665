"""One readable line per event accepted, per delivery attempt and per final outcome.

The broker hands each Record to a callback; `kshop dev` streams them as its live log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger("kshop.broker")


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the ingress took the event (or a reply) and fanned it out
    REJECTED = "rejected"  # the ingress refused it
    RETRYING = "retrying"  # an attempt failed and another one follows
    DELIVERED = "delivered"  # the destination took it, with no reply
    REPLIED = "replied"  # the subscriber took it and replied with an event
    FAILED = "failed"  # the last attempt failed; dead-lettering or dropping follows
    DEAD_LETTERED = "dead-lettered"
    DROPPED = "dropped"  # lost for good, and said so


@dataclass(frozen=True)
class Record:
    outcome: Outcome
    type: str
    source: str
    id: str
    trigger: str = ""  # the Trigger, `pingsource/<name>`, or empty at the ingress
    destination: str = ""  # the function called
    attempt: int = 0
    status: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        parts = [f"{self.outcome:<13}", self.type, f"id={self.id}", f"source={self.source}"]
        if self.trigger:
            parts.append(f"trigger={self.trigger}")
        if self.destination:
            parts.append(f"to={self.destination}")
        if self.attempt:
            parts.append(f"attempt={self.attempt}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.detail:
            parts.append(f"({self.detail})")
        return " ".join(parts)


Reporter = Callable[[Record], None]


def log_record(record: Record) -> None:
    """The default reporter: one INFO line on the `kshop.broker` logger."""
    log.info("%s", record)
