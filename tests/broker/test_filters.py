"""Section (b): Trigger filters. Each test sends events whose ids say whether they should pass."""

from typing import Any

import pytest
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.v1.event import CloudEvent

from functions.dev.broker import Outcome
from functions.topology import AttributesFilter, Topology, Trigger
from tests.broker.harness import DEADLETTER, Lab, event, shop

pytestmark = pytest.mark.integration


def shop_with(trigger: Trigger) -> Topology:
    return shop({"f": [trigger]})


async def passing(
    lab: Lab, trigger: Trigger, *events: BaseCloudEvent, structured: bool = False
) -> list[str]:
    """The ids of the events that reach the Trigger's subscriber, in order."""
    async with lab.running(shop_with(trigger)) as broker:
        await broker.deliver(*events, structured=structured)
    return [e.get_id() for e in lab.subscribers.events("f")]


def expected(*events: BaseCloudEvent) -> list[str]:
    return [e.get_id() for e in events if e.get_id().startswith("pass")]


def attributes(**wanted: str) -> Trigger:
    return Trigger(name="t", filter=AttributesFilter(attributes=wanted))


def dialects(*entries: dict[str, Any]) -> Trigger:
    return Trigger(name="t", filters=list(entries))


async def test_without_a_filter_every_event_passes(lab: Lab) -> None:
    events = [event("pass-1"), event("pass-2", type="other.type")]
    assert await passing(lab, Trigger(name="t"), *events) == expected(*events)


async def test_time_is_compared_as_knative_writes_it(lab: Lab) -> None:
    # Knative's filter sees the time its SDK parsed: in UTC, to the nanosecond.
    sent = {
        "pass-1": "2026-11-29T05:11:01.123456789+01:00",
        "pass-2": "2026-11-29T04:11:01.1234567890Z",
        "fail-1": "2026-11-29T04:11:01.123456Z",  # a microsecond time is another time
    }
    trigger = attributes(time="2026-11-29T04:11:01.123456789Z")
    async with lab.running(shop_with(trigger)) as broker:
        for event_id, time in sent.items():
            headers = {"ce-specversion": "1.0", "ce-id": event_id, "ce-type": "t"}
            headers |= {"ce-source": "/s", "ce-time": time}
            response = await broker.client.post("/default/default", headers=headers)
            assert response.status_code == 202, response.text
        await broker.broker.drain()
    assert [e.get_id() for e in lab.subscribers.events("f")] == ["pass-1", "pass-2"]


async def test_classic_attributes_match_exactly_and_case_sensitively(lab: Lab) -> None:
    events = [
        event("pass-1", type="kshop.order.created"),
        event("fail-1", type="kshop.Order.created"),
        event("fail-2", type="kshop.order.created.v2"),
    ]
    assert await passing(lab, attributes(type="kshop.order.created"), *events) == ["pass-1"]


async def test_classic_attributes_are_all_required(lab: Lab) -> None:
    trigger = attributes(type="kshop.order.created", source="/kshop/orders")
    events = [
        CloudEvent({"type": "kshop.order.created", "source": "/kshop/orders", "id": "pass-1"}),
        CloudEvent({"type": "kshop.order.created", "source": "/kshop/users", "id": "fail-1"}),
    ]
    assert await passing(lab, trigger, *events) == ["pass-1"]


async def test_classic_other_keys_are_extensions(lab: Lab) -> None:
    events = [event("pass-1", region="eu"), event("fail-1", region="us"), event("fail-2")]
    assert await passing(lab, attributes(region="eu"), *events) == ["pass-1"]


async def test_classic_empty_value_means_present_and_not_empty(lab: Lab) -> None:
    events = [event("pass-1", region="eu"), event("fail-1", region=""), event("fail-2")]
    assert await passing(lab, attributes(region=""), *events) == ["pass-1"]


async def test_filters_win_over_filter(lab: Lab) -> None:
    trigger = Trigger(
        name="t",
        filter=AttributesFilter(attributes={"type": "never.sent"}),
        filters=[{"prefix": {"type": "kshop."}}],
    )
    events = [event("pass-1", type="kshop.a"), event("fail-1", type="other.a")]
    assert await passing(lab, trigger, *events) == expected(*events)


async def test_exact_compares_the_string_form_and_ands_its_keys(lab: Lab) -> None:
    trigger = dialects({"exact": {"type": "kshop.a", "priority": "5"}})
    events = [
        event("pass-1", type="kshop.a", priority=5),  # a JSON integer, compared as "5"
        event("fail-1", type="kshop.a", priority="05"),
        event("fail-2", type="kshop.b", priority="5"),
        event("fail-3", type="kshop.a"),
    ]
    assert await passing(lab, trigger, *events, structured=True) == ["pass-1"]


async def test_prefix(lab: Lab) -> None:
    events = [
        event("pass-1", type="kshop.a"),
        event("fail-1", type="Kshop.a"),
        event("fail-2", type="other.kshop."),
    ]
    assert await passing(lab, dialects({"prefix": {"type": "kshop."}}), *events) == ["pass-1"]


async def test_suffix(lab: Lab) -> None:
    events = [event("pass-1", type="kshop.order.created"), event("fail-1", type="created.x")]
    assert await passing(lab, dialects({"suffix": {"type": ".created"}}), *events) == ["pass-1"]


async def test_an_entry_with_an_empty_name_or_value_is_skipped(lab: Lab) -> None:
    # Knative cannot build such a filter and drops it, so nothing is filtered out.
    trigger = dialects({"exact": {"type": ""}}, {"prefix": {"": "kshop."}}, {"suffix": {}})
    events = [event("pass-1", type="kshop.a"), event("pass-2", type="other")]
    assert await passing(lab, trigger, *events) == expected(*events)


async def test_all_fails_when_one_child_fails(lab: Lab) -> None:
    trigger = dialects({"all": [{"prefix": {"type": "kshop."}}, {"suffix": {"type": ".created"}}]})
    events = [
        event("pass-1", type="kshop.order.created"),
        event("fail-1", type="kshop.order.paid"),
        event("fail-2", type="shop.order.created"),
    ]
    assert await passing(lab, trigger, *events) == ["pass-1"]


async def test_all_returns_its_last_childs_result(lab: Lab) -> None:
    # Pass then NoFilter gives NoFilter, which `not` leaves alone: everything passes.
    no_filter = {"any": [{"exact": {"type": ""}}]}
    trigger = dialects({"not": {"all": [{"prefix": {"type": "kshop."}}, no_filter]}})
    events = [event("pass-1", type="kshop.a"), event("pass-2", type="other")]
    assert await passing(lab, trigger, *events) == expected(*events)


async def test_an_empty_all_is_no_filter(lab: Lab) -> None:
    events = [event("pass-1"), event("pass-2", type="other")]
    assert await passing(lab, dialects({"all": []}), *events) == expected(*events)


async def test_any_passes_when_one_child_passes(lab: Lab) -> None:
    trigger = dialects({"any": [{"exact": {"type": "kshop.a"}}, {"exact": {"type": "kshop.b"}}]})
    events = [event("pass-1", type="kshop.a"), event("pass-2", type="kshop.b"), event("fail-1")]
    assert await passing(lab, trigger, *events) == expected(*events)


async def test_not_inverts_and_leaves_no_filter_alone(lab: Lab) -> None:
    inverted = dialects({"not": {"exact": {"type": "kshop.a"}}})
    events = [event("fail-1", type="kshop.a"), event("pass-1", type="kshop.b")]
    assert await passing(lab, inverted, *events) == ["pass-1"]
    # NoFilter stays NoFilter: both of these let everything through.
    no_filters: list[dict[str, Any]] = [{"all": []}, {"any": [{"exact": {"type": ""}}]}]
    for no_filter in no_filters:
        lab.subscribers.reset()
        events = [event("pass-1", type="kshop.a"), event("pass-2", type="kshop.b")]
        assert await passing(lab, dialects({"not": no_filter}), *events) == expected(*events)


async def test_nested_all_any_not(lab: Lab) -> None:
    trigger = dialects(
        {
            "all": [
                {"prefix": {"type": "kshop.order."}},
                {
                    "any": [
                        {"exact": {"region": "eu"}},
                        {"not": {"suffix": {"type": ".created"}}},
                    ]
                },
            ]
        }
    )
    events = [
        event("pass-1", type="kshop.order.created", region="eu"),
        event("pass-2", type="kshop.order.paid", region="us"),
        event("fail-1", type="kshop.order.created", region="us"),
        event("fail-2", type="kshop.user.created", region="eu"),
    ]
    assert await passing(lab, trigger, *events) == expected(*events)


async def test_entries_of_filters_are_anded(lab: Lab) -> None:
    trigger = dialects({"prefix": {"type": "kshop."}}, {"exact": {"region": "eu"}})
    events = [
        event("pass-1", type="kshop.a", region="eu"),
        event("fail-1", type="kshop.a", region="us"),
        event("fail-2", type="other", region="eu"),
    ]
    assert await passing(lab, trigger, *events) == ["pass-1"]


async def test_cesql_passes_only_on_true_and_fails_on_errors(lab: Lab) -> None:
    trigger = dialects({"cesql": "type LIKE 'kshop.%' AND amount > 100"})
    events = [
        event("pass-1", type="kshop.order.paid", amount="250"),  # extensions are text
        event("fail-1", type="kshop.order.paid", amount="50"),
        event("fail-2", type="kshop.order.paid"),  # a missing attribute is an error
        event("fail-3", type="kshop.order.paid", amount="lots"),  # a failed cast too
        event("fail-4", type="other", amount="250"),
    ]
    assert await passing(lab, trigger, *events) == ["pass-1"]


async def test_cesql_sees_the_ttl_the_ingress_set(lab: Lab) -> None:
    trigger = dialects({"cesql": "knativebrokerttl = 254"})
    events = [event("pass-1", knativebrokerttl="255"), event("fail-1")]
    assert await passing(lab, trigger, *events) == ["pass-1"]


async def test_an_invalid_cesql_expression_is_refused_at_load(lab: Lab) -> None:
    with pytest.raises(ValueError, match="trigger 't': invalid cesql filter"):
        async with lab.running(shop_with(dialects({"cesql": "type = "}))):
            pass


async def test_a_filtered_out_event_is_neither_retried_nor_dead_lettered(lab: Lab) -> None:
    async with lab.running(shop_with(attributes(type="kshop.a"))) as broker:
        await broker.deliver(event("fail-1", type="kshop.b"))
        assert not lab.subscribers.requests
        assert broker.outcomes(Outcome.ACCEPTED)[0].detail == "to no trigger"
    assert not lab.subscribers.events(DEADLETTER)
