"""Which dead letters: the filter of the API, as query parameters and as MongoDB's filter.

Kept free of the database driver, so that `kshop dlq` builds its requests with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["failed", "replayed"]

# An event type, or a prefix of one ending in "*" as in the functions' handlers.
# "*" nowhere else: "*" alone or "**" would read as "every type", and a purge
# with it would empty the store without all=true.
TYPE_PATTERN = r"^[^*]+\*?$"


def utc(at: datetime) -> datetime:
    """The same instant in UTC, as MongoDB keeps times; a time without an offset is UTC.

    ValueError for a time that is not one in UTC: 0001-01-01T00:00+01:00 is
    in year 0 there, which neither Python nor BSON can hold.
    """
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range: in UTC it is not within years 1 to 9999") from None


@dataclass(frozen=True)
class Query:
    """Every field given must match."""

    type: str | None = None
    source: str | None = None
    code: int | None = None
    status: Status | None = None
    since: datetime | None = None
    until: datetime | None = None

    def empty(self) -> bool:
        return not self.params()

    def params(self) -> dict[str, str]:
        """As the API's query parameters."""
        return {
            name: value.isoformat() if isinstance(value, datetime) else str(value)
            for name, value in vars(self).items()
            if value is not None
        }

    def filter(self) -> dict[str, Any]:
        """As a MongoDB filter."""
        found: dict[str, Any] = {}
        if self.type is not None:
            # "kshop.order.*" is every order event, as in the functions' handlers.
            found["type"] = (
                {"$regex": f"^{re.escape(self.type[:-1])}"}
                if self.type.endswith("*")
                else self.type
            )
        if self.source is not None:
            found["source"] = self.source
        if self.code is not None:
            found["error.code"] = self.code
        if self.status is not None:
            found["status"] = self.status
        window = {
            op: at for op, at in (("$gte", self.since), ("$lt", self.until)) if at is not None
        }
        if window:
            found["receivedAt"] = window
        return found
