"""The order state machine: every (status, fact) pair, legal or not."""

import pytest

from functions.orders.machine import (
    BEFORE_PIVOT,
    TERMINAL,
    Advance,
    Fact,
    Illegal,
    Reason,
    Stale,
    Status,
    decide,
)

S, F, R = Status, Fact, Reason

LEGAL = {
    (S.PENDING, F.RESERVED): Advance(S.RESERVED),
    (S.PENDING, F.REJECTED): Advance(S.CANCELLED, R.OUT_OF_STOCK),
    (S.PENDING, F.PAID): Advance(S.PAID),
    (S.PENDING, F.PAYMENT_FAILED): Advance(S.CANCELLED, R.PAYMENT_DECLINED),
    (S.PENDING, F.CANCEL): Advance(S.CANCELLED, R.CUSTOMER),
    (S.PENDING, F.TIMEOUT): Advance(S.CANCELLED, R.TIMEOUT),
    (S.RESERVED, F.PAID): Advance(S.PAID),
    (S.RESERVED, F.PAYMENT_FAILED): Advance(S.CANCELLED, R.PAYMENT_DECLINED),
    (S.RESERVED, F.CANCEL): Advance(S.CANCELLED, R.CUSTOMER),
    (S.RESERVED, F.TIMEOUT): Advance(S.CANCELLED, R.TIMEOUT),
    (S.PAID, F.SHIPPED): Advance(S.COMPLETED),
}

ILLEGAL = {
    (S.PENDING, F.SHIPPED),
    (S.RESERVED, F.REJECTED),
    (S.RESERVED, F.SHIPPED),
    (S.PAID, F.REJECTED),
    (S.PAID, F.PAYMENT_FAILED),
    (S.PAID, F.CANCEL),
    (S.COMPLETED, F.REJECTED),
    (S.COMPLETED, F.PAYMENT_FAILED),
    (S.COMPLETED, F.CANCEL),
    (S.CANCELLED, F.SHIPPED),
}

EVERY_PAIR = [(s, f) for s in Status for f in Fact]
STALE = set(EVERY_PAIR) - set(LEGAL) - ILLEGAL


@pytest.mark.parametrize(("status", "fact"), sorted(LEGAL))
def test_a_legal_transition_advances(status: Status, fact: Fact) -> None:
    assert decide(status, fact) == LEGAL[(status, fact)]


@pytest.mark.parametrize(("status", "fact"), sorted(ILLEGAL))
def test_an_illegal_transition_is_refused_with_a_reason(status: Status, fact: Fact) -> None:
    decision = decide(status, fact)
    assert isinstance(decision, Illegal)
    assert decision.why


@pytest.mark.parametrize(("status", "fact"), sorted(STALE))
def test_a_late_or_repeated_fact_changes_nothing(status: Status, fact: Fact) -> None:
    assert isinstance(decide(status, fact), Stale)


def test_the_machine_answers_for_every_pair_and_the_tables_above_do_not_overlap() -> None:
    # With the three tests above (one per kind, STALE being the rest), every pair is checked.
    assert not set(LEGAL) & ILLEGAL
    assert all(isinstance(decide(s, f), Advance | Stale | Illegal) for s, f in EVERY_PAIR)


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_a_terminal_order_never_moves(status: Status) -> None:
    assert not any(isinstance(decide(status, f), Advance) for f in Fact)


def test_only_orders_before_the_pivot_can_be_cancelled() -> None:
    cancellable = {s for s in Status if isinstance(decide(s, F.CANCEL), Advance)}
    expirable = {s for s in Status if isinstance(decide(s, F.TIMEOUT), Advance)}
    assert cancellable == expirable == BEFORE_PIVOT


def test_every_cancellation_names_its_reason() -> None:
    for status, fact in EVERY_PAIR:
        decision = decide(status, fact)
        if isinstance(decision, Advance):
            assert (decision.reason is not None) == (decision.to == S.CANCELLED)


def test_completion_needs_payment_then_shipment() -> None:
    completing = [(s, f) for s, f in EVERY_PAIR if decide(s, f) == Advance(S.COMPLETED)]
    assert completing == [(S.PAID, F.SHIPPED)]


@pytest.mark.parametrize(("status", "fact"), EVERY_PAIR)
def test_an_event_with_other_terms_than_the_order_is_illegal_whatever_the_status(
    status: Status, fact: Fact
) -> None:
    decision = decide(status, fact, mismatched=["totalCents", "currency"])
    assert decision == Illegal(f"the {fact} event does not match the order's currency, totalCents")
