"""Section (e): a subscriber's answer, reply or not."""

import pytest

from functions.dev.broker import Outcome
from functions.runtime import codec
from functions.runtime.testing import cloudevent
from tests.broker.harness import CHAIN, DEADLETTER, START, Lab, Reply, event, on, shop

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("status", "structured"), [(200, False), (200, True), (202, False)], ids=str
)
async def test_a_reply_is_published_back_to_the_broker(
    lab: Lab, status: int, structured: bool
) -> None:
    reply = event("r1", type="kshop.b")
    lab.subscribers.answer("a", Reply.event(reply, status, structured=structured))
    async with lab.running(CHAIN) as broker:
        await broker.deliver(event("e1", type="kshop.a"))
        (replied,) = broker.outcomes(Outcome.REPLIED)
    assert (replied.id, replied.status, replied.detail) == ("e1", status, "reply kshop.b")
    (received,) = lab.subscribers.events("b")
    assert (received.get_id(), received.get_data()) == ("r1", {"n": 1})


async def test_a_reply_is_a_new_pass_through_the_ingress(lab: Lab) -> None:
    # Whatever the reply says, the filter puts back the original's TTL and the
    # ingress decrements it and sets a new arrival time.
    stale = {"knativebrokerttl": "7", "knativearrivaltime": "2000-01-01T00:00:00Z"}
    lab.subscribers.answer("a", Reply.event(event("r1", type="kshop.b", **stale)))
    lab.subscribers.answer("b", then=Reply(400))
    async with lab.running(CHAIN) as broker:
        await broker.deliver(event("e1", type="kshop.a"))
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_id() == "r1"
    assert letter.get_extension("knativebrokerttl") == "254"
    assert letter.get_extension("knativearrivaltime") == START.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_an_empty_2xx_completes_the_delivery(lab: Lab) -> None:
    lab.subscribers.answer("a", then=Reply(200))
    async with lab.running(CHAIN) as broker:
        await broker.deliver(event("e1", type="kshop.a"))
    assert [r.outcome for r in broker.records] == [Outcome.ACCEPTED, Outcome.DELIVERED]
    assert set(lab.subscribers.requests) == {"a"}


async def test_an_event_without_data_is_a_reply_though_the_body_is_empty(lab: Lab) -> None:
    # Knative's filter reads the encoding before it looks at the body.
    headers, body = codec.encode(cloudevent(None, type="kshop.b", id="r1"))
    assert body == b""
    lab.subscribers.answer("a", Reply(200, body, headers))
    async with lab.running(CHAIN) as broker:
        await broker.deliver(event("e1", type="kshop.a"))
        (replied,) = broker.outcomes(Outcome.REPLIED)
    assert replied.id == "e1"
    (received,) = lab.subscribers.events("b")
    assert (received.get_id(), received.get_data()) == ("r1", None)


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/cloudevents+json"},
        {"ce-specversion": "1.0", "ce-type": "kshop.b", "ce-source": "/s"},  # no id
    ],
    ids=["structured", "binary-without-id"],
)
async def test_an_empty_body_that_claims_to_be_an_event_fails_like_a_502(
    lab: Lab, headers: dict[str, str]
) -> None:
    lab.subscribers.answer("a", then=Reply(200, b"", headers))
    async with lab.running(CHAIN) as broker:
        await broker.deliver(event("e1", type="kshop.a"))
        assert [r.status for r in broker.outcomes(Outcome.RETRYING)] == [502, 502]
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_id() == "e1"


async def test_a_2xx_with_a_body_that_is_not_an_event_fails_like_a_502(lab: Lab) -> None:
    lab.subscribers.answer("a", then=Reply(200, b"null", {"content-type": "application/json"}))
    async with lab.running(CHAIN) as broker:
        await broker.deliver(event("e1", type="kshop.a"))
        assert [r.status for r in broker.outcomes(Outcome.RETRYING)] == [502, 502]
    assert len(lab.subscribers.requests["a"]) == 3
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_id() == "e1"
    # Knative's filter answers a bare 502, so there is nothing to describe the failure with.
    assert not {name for name in letter.get_attributes() if name.startswith("knativeerror")}


async def test_a_refused_reply_sends_the_original_to_the_dead_letter_sink(lab: Lab) -> None:
    lab.subscribers.answer("a", Reply.event(event("r1", type="kshop.b")))
    async with lab.running(CHAIN) as broker:
        # TTL 2 becomes 1 at the ingress; the reply gets 1 back, which the ingress refuses.
        await broker.deliver(event("e1", type="kshop.a", knativebrokerttl="2"))
        ingress_url = broker.broker.ingress_url
    assert not lab.subscribers.requests["b"]
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_id() == "e1"
    assert letter.get_extension("knativeerrordest") == ingress_url
    assert letter.get_extension("knativeerrorcode") == "400"


async def test_a_reply_loop_ends_when_the_ttl_is_exhausted(lab: Lab) -> None:
    # A subscriber that answers every event with another of the same type.
    loop = shop({"a": [on("loop", "kshop.a")]})
    lab.subscribers.answer("a", then=Reply.event(event("again", type="kshop.a")))
    async with lab.running(loop) as broker:
        await broker.deliver(event("e1", type="kshop.a"))
    assert len(lab.subscribers.requests["a"]) == 255
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_extension("knativebrokerttl") == "1"
    assert letter.get_extension("knativeerrorcode") == "400"
