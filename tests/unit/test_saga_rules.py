"""Pure rules of the saga's steps: declines, labels, and the bulk restock's bounds."""

import asyncio
from datetime import date

import pytest

from functions.inventory.restock import run_all
from functions.payments.gateway import decline_code
from functions.runtime import NotFound
from functions.shipping.carrier import SimulatedCarrier, business_days_after


@pytest.mark.parametrize(
    ("token", "amount", "expected"),
    [
        ("tok_visa", 100, None),
        ("tok_visa", 5_000, None),
        ("tok_visa", 5_001, "amount_too_large"),
        ("tok_declined", 100, "card_declined"),
        ("tok_decline_anything", 100, "card_declined"),
        ("tok_insufficient_funds", 100, "insufficient_funds"),
    ],
)
def test_the_simulated_gateway_declines_deterministically(
    token: str, amount: int, expected: str | None
) -> None:
    assert decline_code(token, amount, limit_cents=5_000) == expected


def test_eta_counts_business_days_only() -> None:
    friday = date(2026, 11, 27)
    assert business_days_after(friday, 1) == date(2026, 11, 30)
    assert business_days_after(friday, 3) == date(2026, 12, 2)
    assert business_days_after(friday, 0) == friday


async def test_a_label_is_the_same_for_the_same_reference() -> None:
    carrier = SimulatedCarrier(eta_days=2)
    first = await carrier.book("ord_1", date(2026, 11, 23))
    assert first == await carrier.book("ord_1", date(2026, 11, 23))
    assert (
        first.tracking_number != (await carrier.book("ord_2", date(2026, 11, 23))).tracking_number
    )
    assert first.tracking_number.startswith("KP") and len(first.tracking_number) == 14
    assert first.eta == date(2026, 11, 25)


async def test_bulk_restock_bounds_concurrency_and_reports_each_failure() -> None:
    running = peak = 0

    async def restock(sku: str, quantity: int) -> dict[str, object]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        if sku.startswith("missing"):
            raise NotFound("No such product")
        if sku == "broken":
            raise RuntimeError("driver exploded")
        return {"_id": sku, "available": quantity}

    items = [(f"sku{i}", i + 1) for i in range(20)] + [("missing1", 1), ("broken", 2)]
    outcomes = await run_all(items, restock, concurrency=3)

    assert peak == 3
    assert [o.sku for o in outcomes] == [sku for sku, _ in items]
    assert all(o.product == {"_id": o.sku, "available": o.quantity} for o in outcomes[:20])
    missing, broken = outcomes[20:]
    assert (missing.status, missing.error, missing.product) == (404, "No such product", None)
    assert (broken.status, broken.error) == (500, "Internal error")
