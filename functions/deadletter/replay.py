"""Send a dead letter's original event to the broker again, and say what happened.

The event keeps its id and traceparent: idempotent consumers that handled it
before skip it, and its trace continues where it broke. Its headers and body
are the stored wire form, so the broker gets what the producer sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from functions.runtime import publisher

# Enough of a refusal to say why, not a whole error page.
_ERROR_BODY_LIMIT = 500


def accepted(outcome: dict[str, Any]) -> bool:
    status = outcome["status"]
    return status is not None and 200 <= status < 300


async def send(letter: dict[str, Any]) -> dict[str, Any]:
    """POST the original to K_SINK once; the outcome, whether or not it was taken."""
    outcome: dict[str, Any] = {"at": datetime.now(UTC), "target": publisher.sink()}
    try:
        response = await publisher.post(letter["original"]["headers"], letter["original"]["body"])
    except httpx.HTTPError as exc:
        return outcome | {"status": None, "error": f"{type(exc).__name__}: {exc}".rstrip(": ")}
    error = None if response.is_success else response.text[:_ERROR_BODY_LIMIT]
    return outcome | {"status": response.status_code, "error": error}
