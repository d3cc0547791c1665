"""What every step of the order saga shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloudevents.core.v1.event import CloudEvent

    from functions.runtime import EventData, Function


def outcome(function: Function, data: EventData, order_id: str) -> CloudEvent:
    """A step's outcome for one order, as a reply.

    Its id is fixed by the order and the type: a step that is re-run (a
    redelivery, a crash before the reply left, a second trigger for the same
    compensation) re-sends the SAME event, which consumers' idempotency
    suppresses. The data must therefore come from stored state, never from the
    clock, so a re-sent event is byte for byte the first.
    """
    return function.event(data, subject=order_id, id=f"{order_id}:{data.event_type}")
