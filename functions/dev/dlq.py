"""`kshop dlq`: the dead-letter function's HTTP API from the terminal."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from functions.deadletter.query import Query
from functions.dev.table import table

if TYPE_CHECKING:
    import httpx

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
PERMISSIONS = ("dlq:read", "dlq:replay", "dlq:delete")


class DeadLetterError(Exception):
    """The dead-letter API refused or could not be reached: the message says why."""


def when(text: str, now: datetime | None = None) -> datetime:
    """`--since`/`--until`: an ISO 8601 time (UTC without an offset) or an age: 30s, 10m, 2h, 7d."""
    found = _AGO.match(text)
    if found:
        amount, unit = found.groups()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise DeadLetterError(
            f"{text!r} is neither a time (ISO 8601) nor an age (10m, 2h)"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class Client:
    def __init__(self, url: str, token: str, timeout: float = 30) -> None:
        import httpx  # only the commands that call the function pay its import

        self.http: httpx.Client = httpx.Client(
            base_url=f"{url.rstrip('/')}/deadletter",
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def _call(self, method: str, path: str, params: Mapping[str, str] | None = None) -> Any:
        import httpx

        try:
            response = self.http.request(method, path, params=params)
        except httpx.HTTPError as exc:
            raise DeadLetterError(f"{self.http.base_url} is unreachable: {exc}") from None
        if response.status_code == 204:
            return None
        body = response.json() if response.content else {}
        if not response.is_success:
            message = f"{response.status_code} {body.get('error', response.reason_phrase)}"
            details = "; ".join(map(str, body.get("details", [])))
            raise DeadLetterError(f"{message}: {details}" if details else message)
        return body

    def list(self, where: Query, limit: int, cursor: str | None = None) -> dict[str, Any]:
        params = where.params() | {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        page: dict[str, Any] = self._call("GET", "/events", params)
        return page

    def show(self, id: str) -> dict[str, Any]:
        letter: dict[str, Any] = self._call("GET", f"/events/{id}")
        return letter

    def replay(self, id: str) -> dict[str, Any]:
        """The letter after the replay, its outcome last in `replays`."""
        letter: dict[str, Any] = self._call("POST", f"/events/{id}/replay")
        return letter

    def delete(self, id: str) -> None:
        self._call("DELETE", f"/events/{id}")

    def purge(self, where: Query, everything: bool) -> int:
        params = where.params() | ({"all": "true"} if everything else {})
        deleted: int = self._call("DELETE", "/events", params)["deleted"]
        return deleted


def listing(items: list[dict[str, Any]]) -> str:
    rows = [
        [
            item["id"],
            item["receivedAt"][:19].replace("T", " "),
            item["type"],
            str(item["error"]["code"] or "-"),
            item["status"],
            str(len(item["replays"])),
            item["error"]["message"] or (item["error"]["data"] or "")[:60],
        ]
        for item in items
    ]
    return table(["ID", "RECEIVED (UTC)", "TYPE", "CODE", "STATUS", "REPLAYS", "ERROR"], rows)


def replayed(letter: dict[str, Any]) -> tuple[bool, str]:
    """Whether the broker took the replay, and a line that says so."""
    id, outcome = letter["id"], letter["replays"][-1]
    status = outcome["status"]
    if status is not None and 200 <= status < 300:
        return True, f"{id}: replayed to {outcome['target']}: {status}"
    return False, f"{id}: the broker refused the replay: {status} {outcome['error'] or ''}".rstrip()
