"""A chaos proxy between the dev broker and the functions.

The broker is given the proxy's URL for each function (SagaStack's `route`),
and the proxy misbehaves the way a real broker and network may:

- delay: a delivery waits before it is forwarded, so later events overtake it;
- duplicate: a delivery is made twice, the copy later, and the copy's reply is
  published to the broker too, as a second delivery's would be;
- poison: a delivery is answered 400 without reaching the function, so it goes
  to the dead-letter sink at once, to be replayed later.

Deliveries to the dead-letter function pass untouched: it is the safety net.
Randomness comes from one seeded generator; interleavings still vary run to run.
`busy` says whether anything is still on its way through the proxy.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

import httpx

from functions.runtime.app import Receive, Scope, Send, read_body, respond
from functions.runtime.errors import BadRequest, error_body

SPARED = frozenset({"deadletter"})
# Hop-by-hop and length headers are the proxy's own to set.
_DROPPED = frozenset({"content-length", "transfer-encoding", "connection", "host"})


@dataclass
class ChaosProxy:
    rng: random.Random
    duplicate: float = 0.1
    delay: float = 0.2
    max_delay: float = 1.5
    poison: float = 0.01
    ingress: str = ""
    targets: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    url: str = ""
    _client: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_connections=None)
        )
    )
    _copies: set[asyncio.Task[None]] = field(default_factory=set)
    _forwarding: int = 0

    @property
    def busy(self) -> bool:
        """A delivery is being forwarded to its function, or a copy has yet to be made."""
        return self._forwarding > 0 or bool(self._copies)

    def route(self, name: str, url: str) -> str:
        self.targets[name] = url
        return f"{self.url}/{name}"

    async def close(self) -> None:
        for task in self._copies:
            task.cancel()
        await asyncio.gather(*self._copies, return_exceptions=True)
        await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        name = scope["path"].strip("/").split("/")[0]
        headers = {
            k.decode(): v.decode() for k, v in scope["headers"] if k.decode() not in _DROPPED
        }
        body = await read_body(headers, receive, 10 * 1024 * 1024)
        if name not in SPARED:
            if self.rng.random() < self.poison:
                self.counts["poisoned"] += 1
                refusal = error_body(BadRequest("chaos: refused"), None)
                await respond(send, 400, {"content-type": "application/json"}, refusal)
                return
            if self.rng.random() < self.delay:
                self.counts["delayed"] += 1
                await asyncio.sleep(self.rng.uniform(0, self.max_delay))
            if self.rng.random() < self.duplicate:
                self.counts["duplicated"] += 1
                copy = asyncio.create_task(
                    self._copy(name, headers, body, self.rng.uniform(0, self.max_delay))
                )
                self._copies.add(copy)
                copy.add_done_callback(self._copies.discard)
        status, answer_headers, content = await self._forward(name, headers, body)
        await respond(send, status, answer_headers, content)

    async def _forward(
        self, name: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        self._forwarding += 1
        try:
            response = await self._client.post(
                self.targets[name] + "/", headers=headers, content=body
            )
        except httpx.TransportError as exc:
            self.counts["unreachable"] += 1
            return 502, {}, f"chaos proxy: {name} unreachable: {exc!r}".encode()
        finally:
            self._forwarding -= 1
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED}
        return response.status_code, kept, response.content

    async def _copy(self, name: str, headers: dict[str, str], body: bytes, wait: float) -> None:
        await asyncio.sleep(wait)
        status, answer_headers, content = await self._forward(name, headers, body)
        if 200 <= status < 300 and content:
            # The copy's reply goes where the broker sends replies: back to its ingress.
            reply = {k: v for k, v in answer_headers.items() if k.lower() != "content-encoding"}
            try:
                await self._client.post(self.ingress, headers=reply, content=content)
            except httpx.TransportError:
                self.counts["lost copy replies"] += 1
