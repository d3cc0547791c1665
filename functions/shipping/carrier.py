"""The carrier: an interface, and a simulated carrier.

Booking is idempotent per reference (the order id), as with real carriers'
shipment references: booking the same parcel twice returns the first label.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from functions.runtime.settings import settings


@dataclass(frozen=True, slots=True)
class Label:
    carrier: str
    tracking_number: str
    eta: date


class Carrier(Protocol):
    async def book(self, reference: str, today: date) -> Label: ...


def business_days_after(start: date, days: int) -> date:
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


class SimulatedCarrier:
    name = "kshop-post"

    def __init__(self, eta_days: int) -> None:
        self.eta_days = eta_days

    async def book(self, reference: str, today: date) -> Label:
        digits = int(hashlib.sha256(reference.encode()).hexdigest(), 16) % 10**12
        return Label(self.name, f"KP{digits:012d}", business_days_after(today, self.eta_days))


def carrier() -> Carrier:
    return SimulatedCarrier(settings().shipping_eta_days)
