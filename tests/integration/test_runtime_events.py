"""The runtime's event contract against a real Redis: status codes, idempotency, publishing."""

import asyncio
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.base import BaseCloudEvent

from functions.runtime import Event, Function, clients, codec, idempotency, logs, pipelining
from functions.runtime.settings import settings
from functions.runtime.testing import Client, cloudevent, running
from tests.fixtures.services import ServiceEnv
from tests.support import sample
from tests.support.certificates import self_signed
from tests.support.saga_stack import eventually
from tests.support.sample import Failing, Ping, Pong, Slow
from tests.support.servers import Recorder, serving

pytestmark = pytest.mark.integration

ERROR_KEYS = {"error", "details", "requestId"}


@pytest.fixture
async def client(service_env: ServiceEnv) -> AsyncIterator[Client]:
    settings.cache_clear()
    async with running(sample.function) as client:
        yield client


# --- answers -------------------------------------------------------------------------


async def test_a_handler_without_a_reply_answers_202_with_an_empty_body(client: Client) -> None:
    answer = await client.send(cloudevent({"n": 1}, type="kshop.sample.noted"))
    assert answer.status == 202
    assert answer.body == b""


async def test_a_reply_comes_back_in_binary_mode(client: Client) -> None:
    answer = await client.send(Ping(message="hi", times=2))
    assert answer.status == 200
    assert answer.headers["ce-type"] == "kshop.sample.ponged"
    assert answer.headers["ce-source"] == "/kshop/sample"
    assert answer.reply is not None
    assert answer.reply.get_data() == {"message": "hihi"}


async def test_a_structured_request_gets_a_structured_reply(client: Client) -> None:
    answer = await client.send(Ping(message="hi"), structured=True)
    assert answer.headers["content-type"] == codec.STRUCTURED
    assert json.loads(answer.body)["type"] == "kshop.sample.ponged"


async def test_a_spec_0_3_event_is_handled_and_answered_in_1_0(client: Client) -> None:
    # Knative's broker carries a 0.3 event as it came, so a function may get one.
    event_id = f"legacy-{uuid.uuid4().hex}"
    headers = {
        "ce-specversion": "0.3",
        "ce-id": event_id,
        "ce-source": "/legacy/producer",
        "ce-type": Ping.event_type,
        "ce-schemaurl": "https://legacy.example/ping.json",
        "content-type": "application/json",
    }
    body = b'{"message": "hi", "times": 2}'
    first = await client.http.post("/", headers=headers, content=body)
    again = await client.http.post("/", headers=headers, content=body)
    assert first.status_code == 200, first.text
    assert (first.headers["ce-specversion"], first.headers["ce-type"]) == ("1.0", Pong.event_type)
    assert json.loads(first.content) == {"message": "hihi"}
    assert (again.status_code, again.content) == (200, first.content)  # a duplicate, as in 1.0
    assert sample.runs[event_id] == 1


# --- bad input -----------------------------------------------------------------------


async def test_invalid_data_is_400_with_details_and_the_handler_does_not_run(
    client: Client,
) -> None:
    event = cloudevent({"message": "", "times": "many", "extra": 1}, type=Ping.event_type)
    answer = await client.send(event)
    assert answer.status == 400
    body = answer.json()
    assert set(body) == ERROR_KEYS
    assert body["error"] == "Validation failed"
    assert {d["field"] for d in body["details"]} == {"message", "times", "extra"}
    assert body["requestId"] == event.get_id()
    assert sample.runs[event.get_id()] == 0


async def test_mongo_operators_in_place_of_a_string_are_refused(client: Client) -> None:
    answer = await client.send(cloudevent({"message": {"$gt": ""}}, type=Ping.event_type))
    assert answer.status == 400
    assert answer.json()["details"][0]["field"] == "message"


async def test_an_unknown_event_type_is_400_so_it_is_dead_lettered(client: Client) -> None:
    answer = await client.send(cloudevent({}, type="kshop.sample.unheard"))
    assert answer.status == 400
    assert "kshop.sample.unheard" in answer.json()["error"]
    metrics = (await client.http.get("/metrics")).text
    assert 'kshop_unhandled_events_total{function="sample"} 1.0' in metrics


# A binary-mode Ping: its handler's model needs a JSON object.
PING = {"ce-specversion": "1.0", "ce-id": "p-1", "ce-source": "/s", "ce-type": Ping.event_type}


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ({"content-type": "application/json"}, b"{}", "Not a CloudEvent"),
        ({"content-type": codec.BATCH}, b"[]", "Batch mode"),
        ({"content-type": codec.STRUCTURED}, b"{oops", "Invalid JSON"),
        ({"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s"}, b"", "Invalid CloudEvent"),
        (PING | {"content-type": "application/json"}, b'{"message": ', "Invalid JSON"),
        (PING, b"\xff\xfe", "Invalid JSON"),
    ],
)
async def test_malformed_requests_are_400(
    client: Client, headers: dict[str, str], body: bytes, error: str
) -> None:
    response = await client.http.post("/", headers=headers, content=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)


async def test_an_oversized_event_is_413(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings(), "max_body_bytes", 1024)
    assert (await client.send(Ping(message="x" * 100))).status == 200
    answer = await client.send(cloudevent({"message": "x" * 2000}, type=Ping.event_type))
    assert answer.status == 413
    assert set(answer.json()) == ERROR_KEYS


async def test_other_methods_on_the_event_path_are_not_found(client: Client) -> None:
    assert (await client.http.get("/")).status_code == 404


# --- failures and their retry semantics ------------------------------------------------


@pytest.mark.parametrize(("error", "status"), [("conflict", 409), ("busy", 429), ("boom", 500)])
async def test_handler_failures_map_to_knative_retry_statuses(
    client: Client, error: str, status: int
) -> None:
    answer = await client.send(Failing(failures=1, error=error))
    assert answer.status == status
    assert set(answer.json()) == ERROR_KEYS
    if status == 429:
        assert answer.headers["retry-after"] == "3"


async def test_an_unexpected_exception_is_logged_with_its_stack(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await client.send(Failing(failures=1, error="boom"))
    assert answer.status == 500
    assert answer.json()["error"] == "Internal error"  # no internals leak to the caller
    record = next(r for r in caplog.records if r.name == "kshop.events")
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])


async def test_redis_down_is_503_so_knative_retries(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.dev.services import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    settings.cache_clear()
    async with running(sample.function) as client:
        answer = await client.send(Ping(message="hi"))
        assert answer.status == 503
        assert "unavailable" in answer.json()["error"]
        ready = await client.http.get("/health/ready")
        assert ready.status_code == 503
        assert "redis" in ready.json()["failed"]


async def test_readiness_checks_redis(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.dev.services import RedisServer

    server = await asyncio.to_thread(RedisServer().start)  # of this test's own, to stop
    monkeypatch.setenv("REDIS_URL", server.url)
    settings.cache_clear()
    monkeypatch.setattr(settings(), "readiness_cache", 0)  # every probe checks afresh
    try:
        async with running(sample.function) as client:
            assert (await client.http.get("/health/ready")).status_code == 200
            await asyncio.to_thread(server.stop)
            ready = await client.http.get("/health/ready")
            assert ready.status_code == 503
            assert list(ready.json()["failed"]) == ["redis"]
            assert (await client.http.get("/health/live")).status_code == 200  # alive all the same
    finally:
        await clients.close()
        server.stop()


# --- idempotency -----------------------------------------------------------------------


async def test_a_duplicate_gets_the_same_reply_without_running_again(client: Client) -> None:
    event = cloudevent(Ping(message="once"))
    first = await client.send(event)
    second = await client.send(event, structured=True)  # another encoding, same event
    assert first.status == second.status == 200
    assert second.body == first.body
    assert second.headers["ce-id"] == first.headers["ce-id"]
    assert sample.runs[event.get_id()] == 1
    metrics = (await client.http.get("/metrics")).text
    assert 'kshop_duplicates_suppressed_total{function="sample",type="kshop.sample.pinged"}' in (
        metrics
    )


async def test_the_same_id_from_another_source_is_another_event(client: Client) -> None:
    await client.send(Ping(message="a"), id="shared", source="/one")
    await client.send(Ping(message="a"), id="shared", source="/two")
    assert sample.runs["shared"] == 2


async def test_a_concurrent_duplicate_gets_429_with_retry_after(client: Client) -> None:
    event = cloudevent(Slow(seconds=0.5))
    first = asyncio.create_task(client.send(event))

    async def running_first() -> bool:
        return sample.runs[event.get_id()] == 1  # so it holds the event's lock

    await eventually(running_first, within=5, every=0.01, what="the first delivery's handler")
    second = await client.send(event)
    assert second.status == 429
    assert int(second.headers["retry-after"]) >= 1
    assert (await first).status == 202
    assert sample.runs[event.get_id()] == 1


async def test_the_same_key_with_another_payload_is_refused_and_not_run(client: Client) -> None:
    await client.send(Ping(message="first"), id="k-1", source="/s")
    answer = await client.send(Ping(message="second"), id="k-1", source="/s")
    assert answer.status == 400
    assert "different payload" in answer.json()["error"]
    assert sample.runs["k-1"] == 1


async def test_a_failed_handler_releases_the_key_so_the_retry_runs(client: Client) -> None:
    event = cloudevent(Failing(failures=1, error="boom"))
    assert (await client.send(event)).status == 500
    assert (await client.send(event)).status == 202
    assert (await client.send(event)).status == 202  # now a stored duplicate
    assert sample.runs[event.get_id()] == 2


async def test_the_lock_of_a_process_that_died_expires(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings(), "idempotency_lock_ttl", 1)
    event = cloudevent(Ping(message="x"))
    digest = idempotency.fingerprint(event.get_type(), None, event.get_data())
    # A process takes the lock and dies before finishing: nothing ever releases it.
    lock = await idempotency.begin("sample", event.get_source(), event.get_id(), digest)
    assert isinstance(lock, idempotency.Lock)
    assert (await client.send(event)).status == 429
    await asyncio.sleep(2.1)
    assert (await client.send(event)).status == 200
    assert sample.runs[event.get_id()] == 1


def _recorded(source: str, event_id: str) -> str:
    """The key of an event's idempotency record in the function named "recorded"."""
    return clients.key("idempotency", "recorded", source, event_id)


async def _record(event: BaseCloudEvent) -> dict[str, Any]:
    stored = await clients.redis().get(_recorded(event.get_source(), event.get_id()))
    assert stored is not None
    record: dict[str, Any] = json.loads(stored)
    return record


async def test_the_answer_does_not_wait_for_the_record_and_a_duplicate_then_finds_it(
    service_env: ServiceEnv,
) -> None:
    settings.cache_clear()
    function, runs = Function("recorded", uses={"redis"}), []

    @function.on("kshop.test.paused")
    async def pause(event: Event[Any]) -> None:
        runs.append(event.id)
        # Redis holds every write for 0.5 s from here, the record's included; reads go on.
        await clients.redis().client_pause(500, all=False)

    loop = asyncio.get_running_loop()
    async with running(function) as client:
        event = cloudevent({"n": 1}, type="kshop.test.paused")
        started = loop.time()
        assert (await client.send(event)).status == 202
        assert loop.time() - started < 0.4
        assert (await _record(event))["status"] == "in_progress"
        await pipelining.call("PING")  # answered after the record, once writes go on
        assert (await _record(event))["status"] == "complete"
        assert (await client.send(event)).status == 202
    assert runs == [event.get_id()]


async def test_a_response_that_could_not_be_recorded_is_still_answered_and_logged(
    service_env: ServiceEnv,
) -> None:
    settings.cache_clear()
    function = Function("recorded", uses={"redis"})

    @function.on("kshop.test.clobbered")
    async def clobber(event: Event[Any]) -> None:
        # Something else takes the key over: the record's script then fails on it.
        key = _recorded(event.source, event.id)
        await clients.redis().delete(key)
        await clients.redis().rpush(key, "not a record")

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("recorded"))
    logger = logging.getLogger("kshop.events")
    logger.addHandler(handler)
    event = cloudevent({"n": 1}, type="kshop.test.clobbered")
    try:
        async with running(function) as client:
            assert (await client.send(event)).status == 202
            await pipelining.call("PING")  # the record's answer came before this one's
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue().splitlines()[0])
    assert (entry["level"], entry["ce_id"]) == ("WARNING", event.get_id())
    assert "not recorded" in entry["message"]
    assert "WRONGTYPE" in entry["exception"]


# --- publishing to K_SINK --------------------------------------------------------------


async def test_publish_posts_a_binary_event_to_k_sink_with_retries(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = Recorder(statuses=[503, 502])
    async with serving(sink) as url:
        monkeypatch.setenv("K_SINK", url)
        settings.cache_clear()
        async with running(sample.function) as client:
            answer = await client.send(cloudevent({"n": 1}, type="kshop.sample.published"))
    assert answer.status == 202
    assert len(sink.requests) == 3  # two 5xx, then accepted
    delivered = sink.requests[-1]
    assert delivered.headers["ce-type"] == "kshop.sample.ponged"
    assert delivered.headers["ce-source"] == "/kshop/sample"
    assert "ce-traceparent" in delivered.headers
    assert len({r.headers["ce-id"] for r in sink.requests}) == 1  # a retry is the same event


async def test_a_sink_that_stays_down_makes_the_event_503(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.dev.services import free_port

    monkeypatch.setenv("K_SINK", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("PUBLISH_RETRIES", "1")
    settings.cache_clear()
    async with running(sample.function) as client:
        answer = await client.send(cloudevent({"n": 1}, type="kshop.sample.published"))
    assert answer.status == 503
    assert "unreachable" in answer.json()["error"]


async def test_a_4xx_from_the_sink_is_not_retried(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = Recorder(statuses=[400])
    async with serving(sink) as url:
        monkeypatch.setenv("K_SINK", url)
        settings.cache_clear()
        async with running(sample.function) as client:
            answer = await client.send(cloudevent({"n": 1}, type="kshop.sample.published"))
    assert answer.status == 500
    assert len(sink.requests) == 1


async def test_a_sink_bindings_overrides_are_set_on_every_published_event(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = Recorder()
    async with serving(sink) as url:
        monkeypatch.setenv("K_SINK", url)
        overrides = {"extensions": {"team": "blue", "region": "eu1"}}  # as a SinkBinding writes it
        monkeypatch.setenv("K_CE_OVERRIDES", json.dumps(overrides))
        settings.cache_clear()
        async with running(sample.function) as client:
            answer = await client.send(cloudevent({"n": 1}, type="kshop.sample.published"))
    assert answer.status == 202
    [delivered] = sink.requests
    assert (delivered.headers["ce-team"], delivered.headers["ce-region"]) == ("blue", "eu1")
    assert delivered.headers["ce-type"] == "kshop.sample.ponged"


async def test_a_sink_bindings_oidc_token_goes_with_every_publish_and_follows_renewal(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = tmp_path / "oidc" / "token"  # where a SinkBinding mounts it: /oidc/token
    sink = Recorder()
    async with serving(sink) as url:
        monkeypatch.setenv("K_SINK", url)
        monkeypatch.setenv("OIDC_TOKEN_FILE", str(token))
        settings.cache_clear()
        async with running(sample.function) as client:
            without = await client.send(cloudevent({"n": 1}, type="kshop.sample.published"))
            token.parent.mkdir()
            token.write_text("first.jwt\n")
            first = await client.send(cloudevent({"n": 2}, type="kshop.sample.published"))
            token.write_text("renewed.jwt")  # Knative renews the Secret; the file follows
            renewed = await client.send(cloudevent({"n": 3}, type="kshop.sample.published"))
            token.unlink()
            token.mkdir()  # not a file: what any reader, root too, fails to read
            unreadable = await client.send(cloudevent({"n": 4}, type="kshop.sample.published"))
    assert [without.status, first.status, renewed.status] == [202, 202, 202]
    assert [r.headers.get("authorization") for r in sink.requests] == [
        None,
        "Bearer first.jwt",
        "Bearer renewed.jwt",
    ]
    assert unreadable.status == 503  # retried: a volume being remounted comes back
    assert unreadable.json()["error"].startswith(f"The OIDC token at {token} cannot be read")


async def test_a_broker_serving_tls_is_trusted_through_k_ca_certs(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    certificate, key = self_signed(tmp_path)
    sink = Recorder()
    monkeypatch.setenv("PUBLISH_RETRIES", "0")
    async with serving(sink, tls=(certificate, key)) as url:
        assert url.startswith("https://")
        monkeypatch.setenv("K_SINK", url)
        settings.cache_clear()
        async with running(sample.function) as client:  # its CA is no root anyone trusts
            untrusted = await client.send(cloudevent({"n": 1}, type="kshop.sample.published"))
        monkeypatch.setenv("K_CA_CERTS", certificate.read_text())
        settings.cache_clear()
        async with running(sample.function) as client:
            trusted = await client.send(cloudevent({"n": 2}, type="kshop.sample.published"))
    assert (untrusted.status, untrusted.json()["error"]) == (
        503,
        "The broker is unreachable: ConnectError",
    )
    assert trusted.status == 202
    [delivered] = sink.requests
    assert delivered.headers["ce-type"] == "kshop.sample.ponged"
