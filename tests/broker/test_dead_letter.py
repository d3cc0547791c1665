"""Section (d): what the dead-letter sink receives, and when nothing does."""

import base64

import pytest

from functions.dev.broker import Outcome
from functions.topology import Trigger
from tests.broker.harness import DEADLETTER, START, Lab, Reply, event, shop

pytestmark = pytest.mark.integration

ALL = {"f": [Trigger(name="t")]}
TWO_KB = bytes(range(256)) * 8


async def test_the_original_event_arrives_with_the_error_attributes(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(500, TWO_KB))
    sent = event("e1", type="kshop.order.created", region="eu")
    async with lab.running(shop(ALL)) as broker:
        await broker.deliver(sent)
    (request,) = lab.subscribers.requests[DEADLETTER]
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert (letter.get_id(), letter.get_type()) == ("e1", "kshop.order.created")
    assert letter.get_data() == {"n": 1}
    assert letter.get_extension("region") == "eu"
    assert letter.get_extension("knativeerrordest") == f"{lab.subscribers.url}/f/"
    assert letter.get_extension("knativeerrorcode") == "500"
    data = letter.get_extension("knativeerrordata")
    assert data == base64.b64encode(TWO_KB[:768]).decode()
    assert len(data) == 1024
    # Still as the channel holds it, and not asking for a reply.
    assert letter.get_extension("knativebrokerttl") == "255"
    assert letter.get_extension("knativearrivaltime") == START.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "prefer" not in request.headers
    assert request.headers["kn-namespace"] == "default"


async def test_error_attributes_already_on_the_event_are_kept(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(400, b"bad"))
    earlier = {"knativeerrordest": "http://earlier/", "knativeerrorcode": "418"}
    async with lab.running(shop(ALL)) as broker:
        await broker.deliver(event(**earlier))
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_extension("knativeerrordest") == "http://earlier/"
    assert letter.get_extension("knativeerrorcode") == "418"
    assert letter.get_extension("knativeerrordata") == base64.b64encode(b"bad").decode()


async def test_a_transport_error_is_code_500_with_the_dispatch_error(lab: Lab) -> None:
    async with lab.running(shop(ALL), endpoints={"f": "http://127.0.0.1:9"}) as broker:
        await broker.deliver(event())
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_extension("knativeerrordest") == "http://127.0.0.1:9/"
    assert letter.get_extension("knativeerrorcode") == "500"
    data = base64.b64decode(letter.get_extension("knativeerrordata"))
    assert data.startswith(b"dispatch error: ")


async def test_an_empty_failure_body_gives_empty_error_data(lab: Lab) -> None:
    # KnativeErrorTransformers adds all three attributes, whatever the body.
    lab.subscribers.answer("f", then=Reply(400))
    async with lab.running(shop(ALL)) as broker:
        await broker.deliver(event())
    (letter,) = lab.subscribers.events(DEADLETTER)
    assert letter.get_extension("knativeerrorcode") == "400"
    assert letter.get_extension("knativeerrordata") == ""


async def test_the_dead_letter_send_is_retried_like_the_delivery(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(400))
    lab.subscribers.answer(DEADLETTER, Reply(503), Reply(503), then=Reply(202))
    async with lab.running(shop(ALL)) as broker:
        await broker.deliver(event())
        assert broker.time.waits == pytest.approx([0.1, 0.2])
        (done,) = broker.outcomes(Outcome.DEAD_LETTERED)
    assert done.attempt == 3
    assert len(lab.subscribers.requests[DEADLETTER]) == 3


async def test_without_a_dead_letter_sink_the_event_is_dropped_and_logged(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(400))
    topology = shop({"f": [Trigger(name="t")]}, delivery=None)
    async with lab.running(topology) as broker:
        await broker.deliver(event("e1"))
    (dropped,) = broker.outcomes(Outcome.DROPPED)
    assert (dropped.id, dropped.trigger, dropped.detail) == ("e1", "t", "no dead letter sink")
    assert not lab.subscribers.requests[DEADLETTER]


async def test_a_failing_dead_letter_sink_drops_the_event(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(400))
    lab.subscribers.answer(DEADLETTER, then=Reply(500))
    async with lab.running(shop(ALL)) as broker:
        await broker.deliver(event())
    (dropped,) = broker.outcomes(Outcome.DROPPED)
    assert (dropped.destination, dropped.attempt, dropped.status) == (DEADLETTER, 3, 500)
    assert dropped.detail.startswith("the dead-letter sink failed")
