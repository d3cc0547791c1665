"""The order state machine, pure: which fact moves an order from which status to which.

    PENDING -> RESERVED -> PAID -> COMPLETED
       |          |
       +----------+-------> CANCELLED(reason)

Facts arrive late, twice and out of order, so the table answers for every
(status, fact) pair:

- Advance: the fact moves the order on. A later step implies the earlier ones
  (a payment proves a reservation), so PENDING takes a payment directly.
- Stale: the fact is old news, or comes after the order has ended: nothing changes.
  A late reservation or charge for a cancelled order is compensated by
  inventory and payments, which keep their own tombstones.
- Illegal: the fact contradicts what the order went through (a shipment before
  payment, a cancel after the pivot), or its event contradicts the order's terms
  (another customer, amount or currency), whatever the status. Such an event is
  a bug, made visible.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PENDING = "PENDING"
    RESERVED = "RESERVED"
    PAID = "PAID"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class Fact(StrEnum):
    RESERVED = "reserved"
    REJECTED = "rejected"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    SHIPPED = "shipped"
    CANCEL = "cancel"
    TIMEOUT = "timeout"


class Reason(StrEnum):
    CUSTOMER = "customer"
    TIMEOUT = "timeout"
    OUT_OF_STOCK = "out_of_stock"
    PAYMENT_DECLINED = "payment_declined"


@dataclass(frozen=True, slots=True)
class Advance:
    to: Status
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class Stale:
    why: str


@dataclass(frozen=True, slots=True)
class Illegal:
    why: str


Decision = Advance | Stale | Illegal

BEFORE_PIVOT = frozenset({Status.PENDING, Status.RESERVED})
TERMINAL = frozenset({Status.COMPLETED, Status.CANCELLED})

_DUPLICATE = Stale("already recorded")
_ENDED = Stale("the order has ended")
_MOOT = Stale("the order is past its pivot")
_LATE = Stale("the order was cancelled; the step is compensated")

_TABLE: dict[Status, dict[Fact, Decision]] = {
    Status.PENDING: {
        Fact.RESERVED: Advance(Status.RESERVED),
        Fact.REJECTED: Advance(Status.CANCELLED, Reason.OUT_OF_STOCK),
        Fact.PAID: Advance(Status.PAID),
        Fact.PAYMENT_FAILED: Advance(Status.CANCELLED, Reason.PAYMENT_DECLINED),
        Fact.SHIPPED: Illegal("shipped before it was paid"),
        Fact.CANCEL: Advance(Status.CANCELLED, Reason.CUSTOMER),
        Fact.TIMEOUT: Advance(Status.CANCELLED, Reason.TIMEOUT),
    },
    Status.RESERVED: {
        Fact.RESERVED: _DUPLICATE,
        Fact.REJECTED: Illegal("rejected after it was reserved"),
        Fact.PAID: Advance(Status.PAID),
        Fact.PAYMENT_FAILED: Advance(Status.CANCELLED, Reason.PAYMENT_DECLINED),
        Fact.SHIPPED: Illegal("shipped before it was paid"),
        Fact.CANCEL: Advance(Status.CANCELLED, Reason.CUSTOMER),
        Fact.TIMEOUT: Advance(Status.CANCELLED, Reason.TIMEOUT),
    },
    Status.PAID: {
        Fact.RESERVED: _DUPLICATE,
        Fact.REJECTED: Illegal("rejected after it was paid"),
        Fact.PAID: _DUPLICATE,
        Fact.PAYMENT_FAILED: Illegal("payment failed after it succeeded"),
        Fact.SHIPPED: Advance(Status.COMPLETED),
        Fact.CANCEL: Illegal("an order cannot be cancelled once it is paid"),
        Fact.TIMEOUT: _MOOT,
    },
    Status.COMPLETED: {
        Fact.RESERVED: _ENDED,
        Fact.REJECTED: Illegal("rejected after it was completed"),
        Fact.PAID: _ENDED,
        Fact.PAYMENT_FAILED: Illegal("payment failed after it was completed"),
        Fact.SHIPPED: _DUPLICATE,
        Fact.CANCEL: Illegal("an order cannot be cancelled once it is paid"),
        Fact.TIMEOUT: _MOOT,
    },
    Status.CANCELLED: {
        Fact.RESERVED: _LATE,
        Fact.REJECTED: _ENDED,
        Fact.PAID: _LATE,
        Fact.PAYMENT_FAILED: _ENDED,
        Fact.SHIPPED: Illegal("shipped after it was cancelled"),
        Fact.CANCEL: _ENDED,
        Fact.TIMEOUT: _ENDED,
    },
}


def decide(status: Status, fact: Fact, mismatched: Collection[str] = ()) -> Decision:
    """What the fact does to an order in `status`.

    `mismatched` names the order's terms that the fact's event states otherwise:
    such an event is about some other order, so it never counts, not even as stale.
    """
    if mismatched:
        return Illegal(
            f"the {fact} event does not match the order's {', '.join(sorted(mismatched))}"
        )
    return _TABLE[status][fact]


# What each fact says of the saga's steps, shown as the order's progress.
PROGRESS: dict[Fact, dict[str, str]] = {
    Fact.RESERVED: {"inventory": "reserved"},
    Fact.REJECTED: {"inventory": "rejected"},
    Fact.PAID: {"inventory": "reserved", "payment": "succeeded"},
    Fact.PAYMENT_FAILED: {"inventory": "reserved", "payment": "failed"},
    Fact.SHIPPED: {"shipment": "created"},
    Fact.CANCEL: {},
    Fact.TIMEOUT: {},
}
