"""A kshop function: a name, handlers chosen by CloudEvent type, and an optional HTTP API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from functions.runtime.events import Event, EventData

if TYPE_CHECKING:
    from cloudevents.core.v1.event import CloudEvent

    from functions.runtime.app import FunctionApp

Dependency = Literal["mongo", "redis"]
Handler = Callable[[Event[Any]], Awaitable["CloudEvent | None"]]
Hook = Callable[[], Awaitable[None]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True, slots=True)
class Registration:
    handler: Handler
    model: type[EventData] | None
    idempotent: bool


class Function:
    """Declares what a function does; the runtime does everything else.

        function = Function("analytics", uses={"redis"}, api="functions.analytics.api:router")

        @function.on(UserCreated)
        async def count(event: Event[UserCreated]) -> None: ...

    `api` names a FastAPI router as "module:attribute". It is imported on the
    first HTTP request, so a function's cold start does not pay for FastAPI
    unless a client calls its API.
    """

    def __init__(
        self,
        name: str,
        *,
        uses: Iterable[Dependency] = (),
        api: str | None = None,
        emits: Iterable[type[EventData]] = (),
    ) -> None:
        self.name = name
        self.source = f"/kshop/{name}"
        self.api = api
        self.emits = tuple(emits)
        self._uses = set(uses)
        self._handlers: dict[str, Registration] = {}
        self._prefixes: list[tuple[str, Registration]] = []
        self.startup: list[Hook] = []
        self.shutdown: list[Hook] = []

    @property
    def uses(self) -> frozenset[Dependency]:
        needs_redis = any(r.idempotent for r in self.registrations().values())
        return frozenset(self._uses | ({"redis"} if needs_redis else set()))

    def on(self, event: type[EventData] | str, *, idempotent: bool = True) -> Callable[[H], H]:
        """Register a handler for a type, a model's type, or a prefix such as "kshop.*"."""
        model = None if isinstance(event, str) else event
        event_type = event if isinstance(event, str) else event.event_type

        def register(handler: H) -> H:
            registration = Registration(handler, model, idempotent)
            if event_type in self.registrations():
                raise ValueError(f"{self.name}: {event_type!r} already has a handler")
            if event_type.endswith("*"):
                self._prefixes.append((event_type[:-1], registration))
            else:
                self._handlers[event_type] = registration
            return handler

        return register

    def registrations(self) -> dict[str, Registration]:
        return self._handlers | {prefix + "*": r for prefix, r in self._prefixes}

    def handler_for(self, event_type: str) -> Registration | None:
        found = self._handlers.get(event_type)
        if found is None:
            found = next((r for p, r in self._prefixes if event_type.startswith(p)), None)
        return found

    def on_startup(self, hook: Hook) -> Hook:
        self.startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        self.shutdown.append(hook)
        return hook

    def event(
        self,
        data: EventData,
        *,
        subject: str | None = None,
        id: str | None = None,
        time: datetime | None = None,
    ) -> CloudEvent:
        """A new event from this function, carrying the current trace context.

        `id` and `time` default to new ones; an outbox passes those it wrote
        down with the state change, so a re-sent event is the same event.
        """
        from cloudevents.core.v1.event import CloudEvent

        from functions.runtime import tracing

        attributes: dict[str, Any] = {
            "type": data.event_type,
            "source": self.source,
            "datacontenttype": "application/json",
            **tracing.current_traceparent(),
        }
        if subject is not None:
            attributes["subject"] = subject
        if id is not None:
            attributes["id"] = id
        if time is not None:
            attributes["time"] = time
        return CloudEvent(attributes, data.model_dump(mode="json", by_alias=True))

    async def publish(
        self,
        data: EventData,
        *,
        subject: str | None = None,
        id: str | None = None,
        time: datetime | None = None,
    ) -> CloudEvent:
        """Send a new event to the broker (K_SINK) and return it."""
        from functions.runtime import metrics, publisher

        event = self.event(data, subject=subject, id=id, time=time)
        try:
            await publisher.send(event)
        except Exception:
            metrics.PUBLISHED.labels(self.name, data.event_type, "sink", "failed").inc()
            raise
        metrics.PUBLISHED.labels(self.name, data.event_type, "sink", "sent").inc()
        return event

    def app(self) -> FunctionApp:
        from functions.runtime.app import FunctionApp

        return FunctionApp(self)
