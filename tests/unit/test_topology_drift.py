"""The topology and the code cannot drift apart.

The Triggers in the chart's values decide what reaches a function; the
function's handlers decide what it can take. An event a Trigger delivers with
no handler would be dead-lettered; a handler no Trigger feeds is dead code.
"""

from pathlib import Path

import pytest
import yaml

from functions import topology
from functions.dev import catalogue

DEPLOYED = catalogue.functions()
MODELS = catalogue.models()
LOADED = topology.load()
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "events.asyncapi.yaml"


def sources(event_type: str) -> list[str]:
    model = MODELS.get(event_type)  # types from outside kshop, like the ping, have none
    emitters = [n for n, f in DEPLOYED.items() if model is not None and model in f.emits]
    return [f"/kshop/{name}" for name in emitters]


@pytest.mark.parametrize("event_type", MODELS)
def test_every_delivered_event_has_a_handler(event_type: str) -> None:
    for source in sources(event_type):
        for name in catalogue.subscribers(event_type, source):
            assert DEPLOYED[name].handler_for(event_type) is not None, (
                f"{name} is sent {event_type} from {source} but has no handler for it"
            )


@pytest.mark.parametrize(
    ("name", "event_type"),
    sorted(
        (name, registered)
        for name, function in DEPLOYED.items()
        for registered in function.registrations()
        if not registered.endswith("*")
    ),
)
def test_every_handler_is_fed_by_a_trigger(name: str, event_type: str) -> None:
    fed = {
        subscriber
        for source in sources(event_type) or ["/kshop/tests"]
        for subscriber in catalogue.subscribers(event_type, source)
    }
    assert name in fed, f"no Trigger or PingSource delivers {event_type} to {name}"


def test_every_emitted_type_has_a_consumer() -> None:
    unheard = [
        t for t in MODELS if sources(t) and not any(catalogue.subscribers(t, s) for s in sources(t))
    ]
    assert unheard == []


def test_the_published_catalogue_is_current() -> None:
    assert yaml.safe_load(DOCUMENT.read_text()) == catalogue.asyncapi(), (
        "docs/events.asyncapi.yaml is stale: run `kshop catalogue > docs/events.asyncapi.yaml`"
    )
