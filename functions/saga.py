"""What every step of the order saga shares: the reply of a step, and the values its events carry.

The value types are the one definition of money, quantities and SKU lines, for
the events and for the HTTP APIs that start the saga. Every number is strict:
JSON's `true` or `"5"` is not an amount of anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Protocol, TypeVar

from pydantic import AfterValidator, Field, Strict

if TYPE_CHECKING:
    from cloudevents.core.v1.event import CloudEvent

    from functions.runtime import EventData, Function

# MongoDB stores integers as BSON int64 at most: a larger one cannot be written
# at all, so no amount or quantity may exceed it.
BSON_INT64_MAX = 2**63 - 1

_Positive = Annotated[int, Strict(), Field(ge=1, le=BSON_INT64_MAX)]
Cents = _Positive  # money, in the currency's minor unit
Quantity = _Positive  # units of one SKU
# The shape of an ISO 4217 code; which currencies are accepted is the catalogue's affair.
Currency = Annotated[str, Strict(), Field(pattern=r"^[A-Z]{3}$")]
# A gateway's token for the customer's card, never the card itself.
PaymentToken = Annotated[str, Strict(), Field(pattern=r"^tok_[A-Za-z0-9_]{1,64}$")]


class _Line(Protocol):
    @property
    def sku(self) -> str: ...


Line = TypeVar("Line", bound=_Line)


def _one_line_per_sku(lines: Sequence[Line]) -> Sequence[Line]:
    # A product holds stock for an order once (its `holds` lists order ids): a
    # second line for the same SKU would find its hold in place and be skipped,
    # while its price still counted in the total that payments charges.
    repeated = sorted(
        sku for sku, count in Counter(line.sku for line in lines).items() if count > 1
    )
    if repeated:
        named = ", ".join(repeated)
        raise ValueError(f"each SKU may appear once (raise its quantity instead): {named}")
    return lines


OneLinePerSku = AfterValidator(_one_line_per_sku)


def outcome(function: Function, data: EventData, order_id: str) -> CloudEvent:
    """A step's outcome for one order, as a reply.

    Its id is fixed by the order and the type: a step that is re-run (a
    redelivery, a crash before the reply left, a second trigger for the same
    compensation) re-sends the SAME event, which consumers' idempotency
    suppresses. The data must therefore come from stored state, never from the
    clock, so a re-sent event is byte for byte the first.
    """
    return function.event(data, subject=order_id, id=f"{order_id}:{data.event_type}")
