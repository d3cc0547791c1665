"""The dead-letter function against real MongoDB, and replays to a real HTTP broker stand-in."""

import base64
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.deadletter.main import function
from functions.dev.services import free_port
from functions.runtime import bearer, codec
from functions.runtime.settings import Settings, settings
from functions.runtime.testing import Client, cloudevent, running
from tests.fixtures.services import ServiceEnv
from tests.support.servers import Recorder, serving

pytestmark = pytest.mark.integration

SECRET = "deadletter-test-secret-0123456789abcdef"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ARRIVAL = "2026-05-01T10:00:00.123Z"


@dataclass
class Sink:
    url: str
    recorder: Recorder


def token(*permissions: str) -> str:
    return bearer.mint("operator", permissions, config=Settings(jwt_secret=SECRET))


ALL = {"authorization": f"Bearer {token('dlq:read', 'dlq:replay', 'dlq:delete')}"}


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    recorder = Recorder()
    async with serving(recorder) as url:
        yield Sink(f"{url}/default/default", recorder)


@pytest.fixture
def env(service_env: ServiceEnv, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("K_SINK", sink.url)
    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture
async def client(env: None) -> AsyncIterator[Client]:
    async with running(function) as client:
        yield client


def error_data(body: bytes) -> str:
    """knativeerrordata as the broker makes it: base64 of at most the first 768 bytes."""
    return base64.b64encode(body[:768]).decode()


async def dead_letter(
    client: Client,
    *,
    type: str = "kshop.order.created",
    id: str = "evt-1",
    code: int = 503,
    destination: str = "http://127.0.0.1:8101",
    arrival: str = ARRIVAL,
    data: Any = None,
    structured: bool = False,
    **extensions: str,
) -> str:
    """Deliver one dead letter as the broker does; its record id."""
    event = cloudevent(
        {"orderId": "o-1", "totalCents": 1250} if data is None else data,
        type=type,
        id=id,
        source="/kshop/orders",
        extensions={
            "traceparent": TRACEPARENT,
            "knativearrivaltime": arrival,
            "knativebrokerttl": "254",
            "knativeerrordest": destination,
            "knativeerrorcode": str(code),
            "knativeerrordata": error_data(b'{"error": "Service unavailable", "details": []}'),
            **extensions,
        },
    )
    answer = await client.send(event, structured=structured)
    assert (answer.status, answer.body) == (202, b"")
    page = await list_letters(client, type=type)
    matching = [item["id"] for item in page["items"] if item["eventId"] == id]
    return str(matching[0])


async def send_structured(client: Client, **fields: Any) -> None:
    """Deliver one event in structured mode, written as given: what the SDK would not write."""
    event = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/kshop/orders",
        "type": "kshop.order.created",
        **fields,
    }
    headers = {"content-type": codec.STRUCTURED}
    answer = await client.http.post("/", headers=headers, content=json.dumps(event).encode())
    assert (answer.status_code, answer.content) == (202, b"")


async def only_letter(client: Client) -> dict[str, Any]:
    """The one stored dead letter, in full."""
    (item,) = (await list_letters(client))["items"]
    return await show(client, item["id"])


async def list_letters(client: Client, **params: Any) -> dict[str, Any]:
    response = await client.http.get("/deadletter/events", params=params, headers=ALL)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def show(client: Client, id: str) -> dict[str, Any]:
    response = await client.http.get(f"/deadletter/events/{id}", headers=ALL)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def replay(client: Client, id: str) -> httpx.Response:
    return await client.http.post(f"/deadletter/events/{id}/replay", headers=ALL)


# --- storing -------------------------------------------------------------------------


async def test_a_dead_letter_is_stored_with_its_error_decoded(client: Client) -> None:
    id = await dead_letter(client, code=503)
    letter = await show(client, id)
    assert letter["eventId"] == "evt-1"
    assert letter["type"] == "kshop.order.created"
    assert letter["source"] == "/kshop/orders"
    assert letter["arrivalTime"] == ARRIVAL
    assert letter["status"] == "failed"
    assert letter["replays"] == []
    assert letter["replayedAt"] is None
    assert letter["error"] == {
        "destination": "http://127.0.0.1:8101",
        "code": 503,
        "data": '{"error": "Service unavailable", "details": []}',
        "message": "Service unavailable",
    }
    received = datetime.fromisoformat(letter["receivedAt"])
    assert abs(datetime.now(UTC) - received) < timedelta(seconds=30)


async def test_the_original_event_is_kept_without_what_the_broker_added(client: Client) -> None:
    id = await dead_letter(client, dataschema="https://kshop.example/schemas/order.json")
    event = (await show(client, id))["event"]
    assert {k for k in event if k.startswith("knative")} == set()
    assert event["id"] == "evt-1"
    assert event["traceparent"] == TRACEPARENT
    assert event["datacontenttype"] == "application/json"
    assert event["dataschema"] == "https://kshop.example/schemas/order.json"
    assert event["data"] == {"orderId": "o-1", "totalCents": 1250}


async def test_error_data_cut_inside_a_character_still_reads(client: Client) -> None:
    body = ("x" + "é" * 500).encode()  # the cut at byte 768 splits an "é"
    event = cloudevent(
        {},
        type="kshop.user.created",
        extensions={
            "knativeerrorcode": "500",
            "knativeerrordata": error_data(body),
            "knativearrivaltime": ARRIVAL,
        },
    )
    assert (await client.send(event)).status == 202
    (item,) = (await list_letters(client))["items"]
    assert item["error"]["data"] == "x" + "é" * 383 + "\ufffd"
    assert item["error"]["message"] is None


async def test_any_event_type_is_taken_even_without_error_attributes(client: Client) -> None:
    event = cloudevent({"task": "x"}, type="dev.knative.sources.ping", source="/apis/v1/x")
    assert (await client.send(event)).status == 202
    (item,) = (await list_letters(client))["items"]
    assert item["type"] == "dev.knative.sources.ping"
    assert item["error"] == {"destination": None, "code": None, "data": None, "message": None}


# An infinite, fractional or 64-bit code is no CloudEvents integer: refused by the
# codec (as by Knative's ingress), it never reaches a dead-letter sink.
@pytest.mark.parametrize(
    "code",
    [42, 600, -(2**31), "not a status"],
    ids=["below-http", "above-http", "int32-min", "text"],
)
async def test_an_error_code_that_is_no_http_status_is_stored_without_one(
    client: Client, code: Any
) -> None:
    await send_structured(client, knativeerrorcode=code, knativearrivaltime=ARRIVAL)
    assert (await only_letter(client))["error"]["code"] is None


async def test_error_data_nested_past_the_json_parser_limit_is_stored(client: Client) -> None:
    body = "[" * 100_000  # from a sender that does not cut it at 768 bytes as the broker does
    encoded = base64.b64encode(body.encode()).decode()
    await send_structured(client, knativeerrordata=encoded, knativeerrorcode="500")
    error = (await only_letter(client))["error"]
    assert error["data"] == body
    assert error["message"] is None


async def test_extensions_that_are_not_strings_are_kept_as_json_text(
    client: Client, sink: Sink
) -> None:
    await send_structured(client, flag=True, count=42, data={"orderId": "o-1"})
    letter = await only_letter(client)
    event = letter["event"]
    # As binary mode writes a Boolean or an Integer: not Python's "True".
    assert (event["flag"], event["count"]) == ("true", "42")
    assert (await replay(client, letter["id"])).status_code == 200
    (sent,) = sink.recorder.requests
    assert (sent.headers["ce-flag"], sent.headers["ce-count"]) == ("true", "42")


async def test_a_huge_extension_value_is_stored_and_replayed_whole(
    client: Client, sink: Sink
) -> None:
    huge = "x" * 200_000
    await send_structured(client, note=huge, data={"orderId": "o-1"})
    letter = await only_letter(client)
    assert letter["event"]["note"] == huge
    assert (await replay(client, letter["id"])).status_code == 200
    assert sink.recorder.requests[0].headers["ce-note"] == huge


async def test_a_redelivered_dead_letter_is_stored_once(client: Client) -> None:
    await dead_letter(client)
    await dead_letter(client)
    assert len((await list_letters(client))["items"]) == 1


async def test_each_failed_delivery_of_one_event_is_its_own_record(client: Client) -> None:
    await dead_letter(client, destination="http://127.0.0.1:8101")
    await dead_letter(client, destination="http://127.0.0.1:8102")
    # After a replay the event passed the broker again: a new arrival, a new failure.
    await dead_letter(client, destination="http://127.0.0.1:8101", arrival="2026-05-01T11:00:00Z")
    items = (await list_letters(client))["items"]
    assert len(items) == 3
    assert {i["eventId"] for i in items} == {"evt-1"}


# --- reading back ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ({"data_base64": "/wA="}, {"data_base64": "/wA="}),
        (
            {"datacontenttype": "application/json", "data_base64": "bm90IGpzb24="},
            {"datacontenttype": "application/json", "data_base64": "bm90IGpzb24="},
        ),
        (
            {"datacontenttype": "text/plain", "data_base64": "/wA="},
            {"datacontenttype": "text/plain", "data_base64": "/wA="},
        ),
        (
            {"datacontenttype": "text/plain", "data": "héllo"},
            {"datacontenttype": "text/plain", "data": "héllo"},
        ),
        # Python's json takes NaN; shown as JSON it would become null.
        ({"data": {"ratio": float("nan")}}, {"data_base64": "eyJyYXRpbyI6IE5hTn0="}),
    ],
    ids=["binary-no-type", "not-the-json-its-type-says", "binary-text", "text", "nan"],
)
async def test_a_stored_letter_reads_back_with_its_data_as_sent(
    client: Client, sent: dict[str, str], shown: dict[str, str]
) -> None:
    await send_structured(client, **sent)
    event = (await only_letter(client))["event"]
    assert {k: v for k, v in event.items() if k.startswith("data")} == shown


async def test_binary_data_without_a_content_type_is_replayed_as_stored(
    client: Client, sink: Sink
) -> None:
    await send_structured(client, data_base64="/wA=")
    (item,) = (await list_letters(client))["items"]
    response = await replay(client, item["id"])
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "replayed"
    (sent,) = sink.recorder.requests
    assert sent.body == b"\xff\x00"
    assert "content-type" not in sent.headers
    assert sent.headers["ce-id"] == "evt-1"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b'{"broken": '), (None, b"\xff\x00 not json")],
    ids=["not-the-json-its-type-says", "no-type"],
)
async def test_a_binary_event_whose_body_is_not_its_type_is_kept_byte_for_byte(
    client: Client, sink: Sink, content_type: str | None, body: bytes
) -> None:
    # The subscriber refused it with 400; there is no sink behind this one to lose it to.
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "evt-1",
        "ce-source": "/kshop/orders",
        "ce-type": "kshop.order.created",
    }
    if content_type:
        headers["content-type"] = content_type
    assert (await client.http.post("/", headers=headers, content=body)).status_code == 202
    event = (await only_letter(client))["event"]
    assert base64.b64decode(event["data_base64"]) == body
    (item,) = (await list_letters(client))["items"]
    assert (await replay(client, item["id"])).status_code == 200
    (sent,) = sink.recorder.requests
    assert sent.body == body


async def test_json_data_nested_deeper_than_an_answer_can_be_is_shown_as_its_bytes(
    client: Client,
) -> None:
    data = b"[" * 300 + b"]" * 300
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "evt-1",
        "ce-source": "/kshop/orders",
        "ce-type": "kshop.order.created",
        "content-type": "application/json",
    }
    assert (await client.http.post("/", headers=headers, content=data)).status_code == 202
    event = (await only_letter(client))["event"]
    assert "data" not in event
    assert base64.b64decode(event["data_base64"]) == data


# --- listing -------------------------------------------------------------------------


async def test_filters_by_type_prefix_code_and_status(client: Client) -> None:
    await dead_letter(client, id="a", type="kshop.order.created", code=503)
    await dead_letter(client, id="b", type="kshop.order.cancelled", code=400)
    await dead_letter(client, id="c", type="kshop.user.created", code=400)

    async def ids(**params: Any) -> set[str]:
        return {i["eventId"] for i in (await list_letters(client, **params))["items"]}

    assert await ids(type="kshop.order.created") == {"a"}
    assert await ids(type="kshop.order.*") == {"a", "b"}
    assert await ids(code=400) == {"b", "c"}
    assert await ids(code=400, type="kshop.user.created") == {"c"}
    assert await ids(source="/kshop/orders") == {"a", "b", "c"}
    assert await ids(status="replayed") == set()
    assert await ids(status="failed") == {"a", "b", "c"}


async def test_filters_by_time(client: Client) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await dead_letter(client, id="a")
    after = datetime.now(UTC) + timedelta(seconds=1)

    async def count(**params: Any) -> int:
        return len((await list_letters(client, **params))["items"])

    assert await count(since=before.isoformat()) == 1
    assert await count(since=after.isoformat()) == 0
    assert await count(until=before.isoformat()) == 0
    assert await count(since=before.isoformat(), until=after.isoformat()) == 1
    # A time without an offset is UTC.
    assert await count(since=after.replace(tzinfo=None).isoformat()) == 0


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(
    ("name", "at"), [("since", "0001-01-01T00:00:00+01:00"), ("until", "9999-12-31T23:59:59-05:00")]
)
async def test_a_time_outside_the_years_utc_can_hold_is_400_naming_it(
    client: Client, method: str, name: str, at: str
) -> None:
    response = await client.http.request(
        method, "/deadletter/events", params={name: at}, headers=ALL
    )
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error", "details", "requestId"}
    assert [d["field"] for d in response.json()["details"]] == [f"query.{name}"]


async def test_the_first_and_last_times_in_utc_are_times_like_any_other(client: Client) -> None:
    await dead_letter(client)
    assert len((await list_letters(client, since="0001-01-01T00:00:00Z"))["items"]) == 1
    assert len((await list_letters(client, until="9999-12-31T23:59:59Z"))["items"]) == 1
    assert len((await list_letters(client, since="0001-01-01T00:00:00-01:00"))["items"]) == 1


async def test_a_cursor_with_a_time_outside_the_years_utc_can_hold_is_400(client: Client) -> None:
    for at in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"):
        cursor = base64.urlsafe_b64encode(json.dumps([at, "0" * 24]).encode()).decode()
        response = await client.http.get(
            "/deadletter/events", params={"cursor": cursor}, headers=ALL
        )
        assert response.status_code == 400, response.text
        assert response.json()["details"] == [{"field": "cursor", "message": "is not a cursor"}]


async def test_pages_follow_each_other_newest_first_without_gaps(client: Client) -> None:
    for n in range(5):
        await dead_letter(client, id=f"e{n}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await list_letters(client, **params)
        seen += [i["eventId"] for i in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ["e4", "e3", "e2", "e1", "e0"]
    assert pages == 3


async def test_a_bad_cursor_or_limit_is_400(client: Client) -> None:
    for params in ({"cursor": "nonsense"}, {"limit": 0}, {"code": 42}, {"status": "lost"}):
        response = await client.http.get("/deadletter/events", params=params, headers=ALL)
        assert response.status_code == 400, params
        assert set(response.json()) == {"error", "details", "requestId"}


# --- replaying -----------------------------------------------------------------------


async def test_replay_sends_the_original_as_it_came_and_records_it(
    client: Client, sink: Sink
) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "evt-9",
        "ce-source": "/kshop/orders",
        "ce-type": "kshop.order.created",
        "ce-traceparent": TRACEPARENT,
        "ce-knativearrivaltime": ARRIVAL,
        "ce-knativebrokerttl": "254",
        "ce-knativeerrorcode": "503",
        "ce-knativeerrordest": "http://127.0.0.1:8101",
        "content-type": "application/json",
    }
    body = b'{ "orderId" :"o-1"}'
    assert (await client.http.post("/", headers=headers, content=body)).status_code == 202
    (item,) = (await list_letters(client))["items"]

    response = await replay(client, item["id"])

    assert response.status_code == 200, response.text
    (sent,) = sink.recorder.requests
    assert sent.path == "/default/default"
    assert json.loads(sent.body) == {"orderId": "o-1"}
    assert sent.headers["ce-id"] == "evt-9"
    assert sent.headers["ce-source"] == "/kshop/orders"
    assert sent.headers["ce-traceparent"] == TRACEPARENT
    assert sent.headers["content-type"] == "application/json"
    assert not [h for h in sent.headers if h.startswith("ce-knative")]
    letter = response.json()
    assert letter["status"] == "replayed"
    (outcome,) = letter["replays"]
    assert outcome["status"] == 202
    assert outcome["target"] == sink.url
    assert outcome["error"] is None
    assert letter["replayedAt"] == outcome["at"]


async def test_a_spec_0_3_dead_letter_is_kept_and_replayed_as_0_3(
    client: Client, sink: Sink
) -> None:
    headers = {
        "ce-specversion": "0.3",
        "ce-id": "old-9",
        "ce-source": "/legacy/producer",
        "ce-type": "legacy.thing.happened",
        "ce-schemaurl": "https://legacy.example/thing.json",
        "ce-knativeerrordest": "http://127.0.0.1:8101",
        "ce-knativeerrorcode": "400",
        "content-type": "application/json",
    }
    answer = await client.http.post("/", headers=headers, content=b'{"n": 1}')
    assert answer.status_code == 202, answer.text
    letter = await only_letter(client)
    assert letter["event"]["specversion"] == "0.3"
    assert letter["event"]["schemaurl"] == headers["ce-schemaurl"]
    assert (await replay(client, letter["id"])).status_code == 200
    (sent,) = sink.recorder.requests
    assert (sent.headers["ce-specversion"], sent.headers["ce-id"]) == ("0.3", "old-9")
    assert json.loads(sent.body) == {"n": 1}


async def test_a_replay_presents_the_sink_bindings_oidc_token(
    client: Client, sink: Sink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    id = await dead_letter(client)
    token = tmp_path / "token"
    token.write_text("replay.jwt")
    monkeypatch.setenv("OIDC_TOKEN_FILE", str(token))
    settings.cache_clear()
    assert (await replay(client, id)).status_code == 200
    (sent,) = sink.recorder.requests
    assert sent.headers["authorization"] == "Bearer replay.jwt"
    assert sent.headers["ce-id"] == "evt-1"


async def test_a_structured_dead_letter_is_replayed_with_the_same_attributes_and_data(
    client: Client, sink: Sink
) -> None:
    id = await dead_letter(client, structured=True)
    assert (await replay(client, id)).status_code == 200
    (sent,) = sink.recorder.requests
    assert not [h for h in sent.headers if h.startswith("ce-knative")]
    assert sent.headers["ce-id"] == "evt-1"
    assert sent.headers["ce-traceparent"] == TRACEPARENT
    assert json.loads(sent.body) == {"orderId": "o-1", "totalCents": 1250}


async def test_replaying_twice_is_recorded_twice(client: Client, sink: Sink) -> None:
    id = await dead_letter(client)
    await replay(client, id)
    second = (await replay(client, id)).json()
    assert [r["status"] for r in second["replays"]] == [202, 202]
    assert second["replayedAt"] == second["replays"][1]["at"]
    assert len(sink.recorder.requests) == 2


async def test_a_refused_replay_is_recorded_and_the_letter_stays_failed(
    client: Client, sink: Sink
) -> None:
    sink.recorder.statuses.append(400)
    id = await dead_letter(client)
    letter = (await replay(client, id)).json()
    assert letter["status"] == "failed"
    assert letter["replayedAt"] is None
    assert [r["status"] for r in letter["replays"]] == [400]
    assert (await list_letters(client, status="failed"))["items"][0]["id"] == id


async def test_a_replay_to_a_broker_that_is_down_is_503_and_recorded(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("K_SINK", f"http://127.0.0.1:{free_port()}/default/default")
    settings.cache_clear()
    async with running(function) as client:
        id = await dead_letter(client)
        response = await replay(client, id)
        assert response.status_code == 503
        assert "ConnectError" in response.json()["details"][0]
        (outcome,) = (await show(client, id))["replays"]
        assert outcome["status"] is None
        assert "ConnectError" in outcome["error"]


async def test_replaying_an_unknown_letter_is_404(client: Client, sink: Sink) -> None:
    response = await replay(client, "0" * 24)
    assert response.status_code == 404
    assert sink.recorder.requests == []


# --- deleting ------------------------------------------------------------------------


async def test_delete_removes_one_letter(client: Client) -> None:
    id = await dead_letter(client, id="a")
    await dead_letter(client, id="b")
    response = await client.http.delete(f"/deadletter/events/{id}", headers=ALL)
    assert (response.status_code, response.content) == (204, b"")
    assert (await client.http.get(f"/deadletter/events/{id}", headers=ALL)).status_code == 404
    assert (await client.http.delete(f"/deadletter/events/{id}", headers=ALL)).status_code == 404
    assert [i["eventId"] for i in (await list_letters(client))["items"]] == ["b"]


async def test_purge_deletes_what_matches_and_needs_a_filter_or_all(client: Client) -> None:
    await dead_letter(client, id="a", type="kshop.order.created")
    await dead_letter(client, id="b", type="kshop.user.created")
    await dead_letter(client, id="c", type="kshop.user.deleted")

    async def purge(**params: Any) -> httpx.Response:
        return await client.http.delete("/deadletter/events", params=params, headers=ALL)

    assert (await purge()).status_code == 400
    assert (await purge(type="kshop.user.*")).json() == {"deleted": 2}
    assert [i["eventId"] for i in (await list_letters(client))["items"]] == ["a"]
    assert (await purge(all="true")).json() == {"deleted": 1}
    assert (await list_letters(client))["items"] == []


@pytest.mark.parametrize("pattern", ["*", "**", "kshop.*.created", "*.created"])
async def test_a_type_pattern_other_than_a_prefix_is_400_and_purges_nothing(
    client: Client, pattern: str
) -> None:
    await dead_letter(client, id="a", type="kshop.order.created")
    await dead_letter(client, id="b", type="kshop.user.created")
    for method in ("GET", "DELETE"):
        response = await client.http.request(
            method, "/deadletter/events", params={"type": pattern}, headers=ALL
        )
        assert response.status_code == 400, (method, response.text)
        assert [d["field"] for d in response.json()["details"]] == ["query.type"]
    assert len((await list_letters(client))["items"]) == 2


# --- access --------------------------------------------------------------------------


async def test_each_action_needs_its_permission(client: Client) -> None:
    id = await dead_letter(client)
    reader = {"authorization": f"Bearer {token('dlq:read')}"}
    assert (await client.http.get("/deadletter/events")).status_code == 401
    assert (await client.http.get("/deadletter/events", headers=reader)).status_code == 200
    denied = await client.http.post(f"/deadletter/events/{id}/replay", headers=reader)
    assert denied.status_code == 403
    assert denied.json()["details"] == ["dlq:replay"]
    deleting = await client.http.delete(f"/deadletter/events/{id}", headers=reader)
    assert deleting.json()["details"] == ["dlq:delete"]
    replayer = {"authorization": f"Bearer {token('dlq:replay')}"}
    assert (await client.http.get(f"/deadletter/events/{id}", headers=replayer)).status_code == 403
