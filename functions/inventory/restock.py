"""Bulk restock: the seed's batch processor, as parallel items with a concurrency bound.

One item's failure never stops the others; each result says what happened to its item.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from functions.runtime.errors import classify

log = logging.getLogger("kshop.inventory")


@dataclass(frozen=True, slots=True)
class Outcome:
    sku: str
    quantity: int
    product: dict[str, Any] | None = None
    error: str | None = None
    status: int = 200


async def run_all(
    items: Sequence[tuple[str, int]],
    restock: Callable[[str, int], Awaitable[dict[str, Any]]],
    concurrency: int,
) -> list[Outcome]:
    """Restock every item, at most `concurrency` at once; outcomes in the items' order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(sku: str, quantity: int) -> Outcome:
        async with gate:
            try:
                return Outcome(sku, quantity, product=await restock(sku, quantity))
            except Exception as exc:
                error = classify(exc)
                if error.status >= 500:
                    log.warning("restock of %s failed: %r", sku, exc)
                return Outcome(sku, quantity, error=error.message, status=error.status)

    return list(await asyncio.gather(*(one(sku, quantity) for sku, quantity in items)))
