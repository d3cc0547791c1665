"""Section (a): the ingress's path rules, status table, arrival time and TTL."""

import json
from collections.abc import AsyncIterator

import pytest

from functions.dev.broker import Outcome
from functions.topology import Trigger
from tests.broker.harness import DEADLETTER, START, Lab, Reply, Running, event, shop
from tests.support.servers import Request

pytestmark = pytest.mark.integration

ERROR_KEYS = {"error", "details", "requestId"}


def anything(function: str = "f") -> dict[str, list[Trigger]]:
    return {function: [Trigger(name=f"{function}-all")]}


@pytest.fixture
async def broker(lab: Lab) -> AsyncIterator[Running]:
    async with lab.running(shop(anything())) as running:
        yield running


async def test_options_is_200_with_the_webhook_headers(broker: Running) -> None:
    for path in ("/default/default", "/", "/any/thing/at/all"):
        response = await broker.client.options(path)
        assert response.status_code == 200
        assert response.headers["allow"] == "POST, OPTIONS"
        assert response.headers["webhook-allowed-origin"] == "*"
        assert response.headers["webhook-allowed-rate"] == "*"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_other_methods_are_405_with_allow(broker: Running, method: str) -> None:
    response = await broker.client.request(method, "/default/default")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, OPTIONS"
    assert set(response.json()) == ERROR_KEYS


async def test_the_root_path_is_404(broker: Running, lab: Lab) -> None:
    response = await broker.send(event(), path="/")
    assert response.status_code == 404
    await broker.broker.drain()
    assert not lab.subscribers.requests


@pytest.mark.parametrize("path", ["/default", "/default/default/more", "/default/default//"])
async def test_a_path_that_is_not_namespace_and_broker_is_400(broker: Running, path: str) -> None:
    response = await broker.send(event(), path=path)
    assert response.status_code == 400
    assert "Malformed path" in response.json()["error"]


async def test_one_trailing_slash_is_ignored(broker: Running, lab: Lab) -> None:
    assert (await broker.send(event(), path="/default/default/")).status_code == 202
    await broker.broker.drain()
    assert len(lab.subscribers.requests["f"]) == 1


async def test_a_query_string_becomes_part_of_the_broker_name(broker: Running) -> None:
    response = await broker.send(event("e1"), path="/default/default?x=1")
    assert response.status_code == 404
    assert response.json()["error"] == "Broker default/default?x=1 not found"
    (rejected,) = broker.outcomes(Outcome.REJECTED)
    assert (rejected.id, rejected.status) == ("e1", 404)


@pytest.mark.parametrize("path", ["/default/other", "/other/default"])
async def test_an_unknown_broker_is_404(broker: Running, path: str) -> None:
    assert (await broker.send(event(), path=path)).status_code == 404


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"content-type": "application/json"}, b'{"type": "not ce headers"}'),
        ({"content-type": "application/cloudevents+json"}, b"{not json"),
    ],
    ids=["plain-json", "structured-bad-json"],
)
async def test_a_request_that_is_not_a_cloudevent_is_400(
    broker: Running, lab: Lab, headers: dict[str, str], body: bytes
) -> None:
    response = await broker.client.post("/default/default", headers=headers, content=body)
    assert response.status_code == 400
    assert set(response.json()) == ERROR_KEYS
    await broker.broker.drain()
    assert not lab.subscribers.requests
    assert broker.outcomes(Outcome.REJECTED)


@pytest.mark.parametrize("content_type", ["application/json", None])
async def test_a_binary_body_is_carried_as_bytes_never_parsed(
    broker: Running, lab: Lab, content_type: str | None
) -> None:
    # Knative's SDK keeps binary-mode data as bytes: JSON that is not JSON is the
    # subscriber's to refuse (a function answers 400, and the event is dead-lettered).
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-type": "t", "ce-source": "/s"}
    if content_type:
        headers["content-type"] = content_type
    body = b"{not json \xff\xfe"
    response = await broker.client.post("/default/default", headers=headers, content=body)
    assert response.status_code == 202
    await broker.broker.drain()
    (request,) = lab.subscribers.requests["f"]
    assert request.body == body


async def delivered(
    broker: Running, lab: Lab, attributes: dict[str, str], structured: bool
) -> Request:
    """What the subscriber got for an event written by hand, with the data {"n": 1}."""
    if structured:
        document = attributes | {"datacontenttype": "application/json", "data": {"n": 1}}
        headers = {"content-type": "application/cloudevents+json"}
        body = json.dumps(document).encode()
    else:
        headers = {f"ce-{name}": value for name, value in attributes.items()}
        headers["content-type"] = "application/json"
        body = b'{"n": 1}'
    response = await broker.client.post("/default/default", headers=headers, content=body)
    assert response.status_code == 202, response.text
    await broker.broker.drain()
    (request,) = lab.subscribers.requests["f"]
    return request


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
async def test_a_spec_0_3_event_is_taken_and_delivered_as_0_3(
    broker: Running, lab: Lab, structured: bool
) -> None:
    # The Go SDK reads 0.3 as well as 1.0, and Knative's broker forwards what it read.
    attributes = {"specversion": "0.3", "id": "old-1", "type": "t", "source": "/s"}
    attributes |= {"schemaurl": "https://legacy.example/t.json", "team": "blue"}
    request = await delivered(broker, lab, attributes, structured)
    assert request.headers["ce-specversion"] == "0.3"
    assert request.headers["ce-schemaurl"] == "https://legacy.example/t.json"
    assert request.headers["ce-team"] == "blue"
    assert json.loads(request.body) == {"n": 1}


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
@pytest.mark.parametrize(
    ("written", "knatives"),
    [
        ("2026-11-29T05:11:01.123456789+01:00", "2026-11-29T04:11:01.123456789Z"),
        ("2026-11-29T04:11:01.500000Z", "2026-11-29T04:11:01.5Z"),  # no trailing zeros
        ("2026-11-28T23:11:01-05:00", "2026-11-29T04:11:01Z"),
        ("2026-11-29T04:11:01.1234567891Z", "2026-11-29T04:11:01.123456789Z"),  # Go: 9 digits
    ],
)
async def test_time_is_delivered_as_knative_writes_it_in_utc_to_the_nanosecond(
    broker: Running, lab: Lab, structured: bool, written: str, knatives: str
) -> None:
    attributes = {"specversion": "1.0", "id": "t-1", "type": "t", "source": "/s", "time": written}
    request = await delivered(broker, lab, attributes, structured)
    assert request.headers["ce-time"] == knatives


async def test_batch_mode_is_400(broker: Running) -> None:
    batch = b'[{"specversion": "1.0", "id": "1", "type": "t", "source": "/s"}]'
    response = await broker.client.post(
        "/default/default",
        headers={"content-type": "application/cloudevents-batch+json"},
        content=batch,
    )
    assert response.status_code == 400
    assert "Batch" in response.json()["error"]


@pytest.mark.parametrize("missing", ["ce-id", "ce-source", "ce-type"])
async def test_an_event_missing_a_required_attribute_is_400(broker: Running, missing: str) -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-type": "t", "ce-source": "/s"}
    del headers[missing]
    response = await broker.client.post("/default/default", headers=headers, content=b"")
    assert response.status_code == 400
    assert response.json()["details"] == [{"attribute": missing[3:], "message": "is required"}]


async def test_an_extension_that_is_not_a_string_integer_or_boolean_is_400(broker: Running) -> None:
    document = {"specversion": "1.0", "id": "1", "type": "t", "source": "/s", "region": {"a": 1}}
    response = await broker.client.post(
        "/default/default",
        headers={"content-type": "application/cloudevents+json"},
        content=json.dumps(document).encode(),
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["attribute"] == "region"


async def test_binary_and_structured_events_are_accepted_with_202_and_no_body(
    broker: Running, lab: Lab
) -> None:
    for structured in (False, True):
        response = await broker.send(event(f"s{structured}"), structured=structured)
        assert response.status_code == 202
        assert response.content == b""
    await broker.broker.drain()
    received = lab.subscribers.events("f")
    assert sorted(e.get_id() for e in received) == ["sFalse", "sTrue"]
    assert [e.get_data() for e in received] == [{"n": 1}, {"n": 1}]


async def test_the_ingress_answers_before_deliveries_finish(lab: Lab) -> None:
    # Our choice, unlike IMC's synchronous default: fan-out runs in the background.
    lab.subscribers.answer("f", Reply(delay=0.3))
    async with lab.running(shop(anything())) as broker:
        assert (await broker.send(event())).status_code == 202
        assert not broker.outcomes(Outcome.DELIVERED)
        await broker.broker.drain()
        assert broker.outcomes(Outcome.DELIVERED)


async def test_the_arrival_time_is_set_on_every_pass(broker: Running, lab: Lab) -> None:
    await broker.deliver(event(knativearrivaltime="2000-01-01T00:00:00Z"))
    (request,) = lab.subscribers.requests["f"]
    assert request.headers["ce-knativearrivaltime"] == START.strftime("%Y-%m-%dT%H:%M:%SZ")


async def dead_lettered_ttl(lab: Lab, **extensions: str) -> str:
    """The knativebrokerttl the DLS copy carries after one pass through the ingress."""
    lab.subscribers.answer("f", then=Reply(400))
    async with lab.running(shop(anything())) as broker:
        await broker.deliver(event(**extensions))
    (letter,) = lab.subscribers.events(DEADLETTER)
    lab.subscribers.requests.clear()
    return str(letter.get_extension("knativebrokerttl"))


async def test_the_ttl_starts_at_255_when_absent_or_not_an_integer(
    lab: Lab,
) -> None:
    assert await dead_lettered_ttl(lab) == "255"
    for junk in ("abc", "1.5", "99999999999"):
        assert await dead_lettered_ttl(lab, knativebrokerttl=junk) == "255"


async def test_the_ttl_is_decremented(lab: Lab) -> None:
    assert await dead_lettered_ttl(lab, knativebrokerttl="10") == "9"


@pytest.mark.parametrize("ttl", ["1", "0", "-3"])
async def test_an_exhausted_ttl_is_400(broker: Running, lab: Lab, ttl: str) -> None:
    response = await broker.send(event(knativebrokerttl=ttl))
    assert response.status_code == 400
    assert "knativebrokerttl" in response.json()["error"]
    await broker.broker.drain()
    assert not lab.subscribers.requests
