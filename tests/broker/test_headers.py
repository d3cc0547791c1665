"""Section (f): the headers a subscriber gets, and those that travel on to replies."""

import json

import pytest

from functions.runtime import codec
from functions.topology import Delivery, Trigger
from tests.broker.harness import CHAIN, Lab, Reply, event, shop

pytestmark = pytest.mark.integration

ALL = {"f": [Trigger(name="t")]}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_the_subscriber_is_asked_for_a_reply_in_its_namespace(lab: Lab) -> None:
    async with lab.running(shop(ALL), namespace="shop") as broker:
        assert (await broker.send(event(), path="/shop/default")).status_code == 202
        await broker.broker.drain()
    (request,) = lab.subscribers.requests["f"]
    assert request.headers["prefer"] == "reply"
    assert request.headers["kn-namespace"] == "shop"


async def test_pass_through_headers_are_forwarded_and_no_others(lab: Lab) -> None:
    sent = {
        "x-request-id": "req-1",
        "retry-after": "5",
        "knative-hop": "h",
        "x-b3-traceid": "b3",
        "authorization": "Bearer secret",
        "cookie": "c=1",
        "x-custom": "no",
    }
    async with lab.running(shop(ALL)) as broker:
        await broker.send(event(), headers=sent)
        await broker.broker.drain()
    (request,) = lab.subscribers.requests["f"]
    forwarded = {k: v for k, v in request.headers.items() if k in sent}
    assert forwarded == {
        "x-request-id": "req-1",
        "retry-after": "5",
        "knative-hop": "h",
        "x-b3-traceid": "b3",
    }


async def test_the_subscriber_never_sees_the_ttl(lab: Lab) -> None:
    async with lab.running(shop(ALL)) as broker:
        await broker.deliver(event(knativebrokerttl="9"))
    (request,) = lab.subscribers.requests["f"]
    assert "ce-knativebrokerttl" not in request.headers


async def test_the_trace_context_travels_as_extension_and_headers(lab: Lab) -> None:
    reply = Reply.event(event("r1", type="kshop.b", traceparent=TRACEPARENT))
    lab.subscribers.answer("a", reply)
    headers = {"traceparent": TRACEPARENT, "tracestate": "kshop=1", "baggage": "tenant=blue"}
    async with lab.running(CHAIN) as broker:
        await broker.send(event("e1", type="kshop.a", traceparent=TRACEPARENT), headers=headers)
        await broker.broker.drain()
    for function in ("a", "b"):
        (request,) = lab.subscribers.requests[function]
        assert request.headers["ce-traceparent"] == TRACEPARENT
        assert request.headers["traceparent"] == TRACEPARENT
        assert request.headers["tracestate"] == "kshop=1"
        assert request.headers["baggage"] == "tenant=blue"


async def test_a_reply_carries_the_subscribers_pass_through_headers(lab: Lab) -> None:
    reply = Reply.event(event("r1", type="kshop.b"))
    reply.headers |= {"x-request-id": "from-a", "knative-step": "2", "x-private": "no"}
    lab.subscribers.answer("a", reply)
    async with lab.running(CHAIN) as broker:
        await broker.send(event("e1", type="kshop.a"), headers={"x-request-id": "original"})
        await broker.broker.drain()
    (request,) = lab.subscribers.requests["b"]
    assert request.headers["x-request-id"] == "from-a"
    assert request.headers["knative-step"] == "2"
    assert request.headers["kn-namespace"] == "default"
    assert "x-private" not in request.headers


async def test_format_json_delivers_in_structured_mode(lab: Lab) -> None:
    trigger = Trigger(name="t", delivery=Delivery(format="json"))
    async with lab.running(shop({"f": [trigger]})) as broker:
        await broker.deliver(event("e1", region="eu"))
    (request,) = lab.subscribers.requests["f"]
    assert request.headers["content-type"] == codec.STRUCTURED
    document = json.loads(request.body)
    assert (document["id"], document["region"], document["data"]) == ("e1", "eu", {"n": 1})
    assert "knativebrokerttl" not in document
