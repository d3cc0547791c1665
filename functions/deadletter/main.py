"""deadletter: the dead-letter sink of every trigger. Stores failed events and replays them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from functions.deadletter import letters, store
from functions.runtime import Event, Function

function = Function("deadletter", uses={"mongo"}, api="functions.deadletter.api:router")


# Not the runtime's idempotency: it keys on (source, id), which would swallow
# the same event failing at a second trigger, or again after a replay. The
# store keys each failed delivery itself, so a redelivered dead letter is one record.
@function.on("*", idempotent=False)
async def keep(event: Event[Any]) -> None:
    await store.save(letters.letter(event, datetime.now(UTC)))
