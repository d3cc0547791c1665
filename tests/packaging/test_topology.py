"""The chart's eventing objects are exactly what functions/topology.py reads from values.

The dev broker routes by functions.topology.load(); the cluster routes by the
Triggers and PingSources below. If the two ever disagree, these tests fail.
"""

from __future__ import annotations

from typing import Any

import pytest

from functions.topology import Delivery, Topology, load
from tests.packaging.tools import CHART, Manifest, knative_services, of_kind

pytestmark = pytest.mark.packaging


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load(str(CHART / "values.yaml"))


def service_ref(function: str) -> dict[str, Any]:
    return {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": function}}


def expected_delivery(delivery: Delivery) -> dict[str, Any]:
    """Knative's delivery spec, with the topology's deadLetterFunction as a sink ref."""
    spec = delivery.model_dump(by_alias=True, exclude_none=True)
    if function := spec.pop("deadLetterFunction", None):
        spec["deadLetterSink"] = service_ref(function)
    return spec


def test_one_knative_service_per_enabled_function(
    topology: Topology, defaults: list[Manifest]
) -> None:
    assert set(knative_services(defaults)) == set(topology.enabled())
    assert len(topology.enabled()) == 8


def test_triggers_match_the_topology(topology: Topology, defaults: list[Manifest]) -> None:
    triggers = {
        t["metadata"]["name"]: t["spec"]
        for t in of_kind(defaults, "Trigger", "eventing.knative.dev")
    }
    expected_names = {t.name for f in topology.enabled().values() for t in f.triggers}
    assert set(triggers) == expected_names

    for name, function in topology.enabled().items():
        for trigger in function.triggers:
            spec = triggers[trigger.name]
            assert spec["broker"] == topology.broker.name
            assert spec["subscriber"] == service_ref(name)
            if trigger.filters:
                # Knative ignores `filter` once `filters` is set, so only one is rendered.
                assert spec["filters"] == trigger.filters
                assert "filter" not in spec
            elif trigger.filter:
                assert spec["filter"] == {"attributes": trigger.filter.attributes}
            else:
                assert "filter" not in spec and "filters" not in spec
            if trigger.delivery:
                assert spec["delivery"] == expected_delivery(trigger.delivery)
            else:
                # Without its own delivery a Trigger inherits the Broker's whole spec.
                assert "delivery" not in spec


def test_the_broker_matches_the_topology(topology: Topology, defaults: list[Manifest]) -> None:
    (broker,) = of_kind(defaults, "Broker", "eventing.knative.dev")
    assert broker["metadata"]["name"] == topology.broker.name
    annotations = broker["metadata"]["annotations"]
    assert annotations["eventing.knative.dev/broker.class"] == topology.broker.class_
    assert topology.broker.delivery is not None
    assert broker["spec"]["delivery"] == expected_delivery(topology.broker.delivery)
    # The issue's requirement, whatever values say later: dead letters are kept.
    assert broker["spec"]["delivery"]["deadLetterSink"] == service_ref("deadletter")
    assert broker["spec"]["delivery"]["backoffPolicy"] == "exponential"


def test_ping_sources_match_the_topology(topology: Topology, defaults: list[Manifest]) -> None:
    rendered = {
        p["metadata"]["name"]: p["spec"]
        for p in of_kind(defaults, "PingSource", "sources.knative.dev")
    }
    assert set(rendered) == {p.name for p in topology.ping_sources}
    for ping in topology.ping_sources:
        spec = rendered[ping.name]
        assert spec["schedule"] == ping.schedule
        assert spec.get("timezone") == ping.timezone
        assert spec.get("contentType") == ping.content_type
        assert spec.get("data") == ping.data
        assert spec["sink"] == service_ref(ping.sink)
