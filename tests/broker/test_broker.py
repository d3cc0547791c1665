"""The broker as kshop dev uses it: the real topology, its API, records, shutdown, the CLI."""

import asyncio
import json
import signal
import sys

import httpx
import pytest

from functions import topology
from functions.dev.broker import Broker, Outcome
from functions.dev.services import free_port
from functions.topology import Delivery, Trigger
from tests.broker.harness import DEADLETTER, Lab, Reply, event, shop

pytestmark = pytest.mark.integration

ALL = {"f": [Trigger(name="t")]}


def test_the_real_topology_loads_every_trigger_for_its_function() -> None:
    real = topology.load()
    functions = real.enabled()
    broker = Broker(real, {name: f"http://127.0.0.1:9/{name}" for name in functions})
    loaded = {t["name"]: t for t in broker.triggers()}
    expected = {t.name: name for name, f in functions.items() for t in f.triggers}
    assert {name: t["function"] for name, t in loaded.items()} == expected
    assert {t["subscriber"] for t in loaded.values()} == {
        f"http://127.0.0.1:9/{name}/" for name in expected.values()
    }
    dead_letter = real.broker.delivery.dead_letter_function  # type: ignore[union-attr]
    assert dead_letter in functions
    assert {t["deadLetterSink"] for t in loaded.values()} == {f"http://127.0.0.1:9/{dead_letter}/"}


def test_a_trigger_whose_function_has_no_endpoint_is_not_loaded() -> None:
    broker = Broker(shop({"f": [Trigger(name="t")], "g": [Trigger(name="u")]}), {"g": "http://g"})
    assert [t["name"] for t in broker.triggers()] == ["u"]


def test_what_knatives_webhook_refuses_is_refused_at_load() -> None:
    bad = shop({"f": [Trigger(name="t", delivery=Delivery(backoff_delay="1s"))]})
    with pytest.raises(ValueError, match="trigger 't': '1s' is not an ISO-8601 duration"):
        Broker(bad, {"f": "http://f"})


async def test_health_and_triggers(lab: Lab) -> None:
    async with lab.running(shop(ALL)) as broker:
        health = (await broker.client.get("/health")).json()
        triggers = (await broker.client.get("/triggers")).json()
    assert health == {"status": "ok", "broker": "default/default", "inFlight": 0}
    assert triggers == [
        {
            "name": "t",
            "function": "f",
            "subscriber": f"{lab.subscribers.url}/f/",
            "filter": None,
            "filters": [],
            "delivery": {
                "retry": 2,
                "backoffPolicy": "exponential",
                "backoffDelaySeconds": 0.1,
                "timeoutSeconds": None,
                "format": "binary",
            },
            "deadLetterSink": f"{lab.subscribers.url}/{DEADLETTER}/",
        }
    ]


async def test_a_record_for_every_attempt_and_outcome(lab: Lab) -> None:
    lab.subscribers.answer("f", Reply(503), then=Reply(202))
    async with lab.running(shop(ALL)) as broker:
        await broker.deliver(event("e1", type="kshop.order.created"))
    accepted, retrying, delivered = broker.records
    assert (accepted.outcome, accepted.status, accepted.detail) == (Outcome.ACCEPTED, 202, "to t")
    assert (retrying.outcome, retrying.attempt, retrying.status) == (Outcome.RETRYING, 1, 503)
    assert (delivered.outcome, delivered.attempt, delivered.status) == (Outcome.DELIVERED, 2, 202)
    assert str(retrying) == (
        "retrying      kshop.order.created id=e1 source=/kshop/tests trigger=t to=f"
        " attempt=1 status=503 (next attempt in 0.1s)"
    )


async def test_stop_lets_in_flight_deliveries_finish(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(delay=0.2))
    async with lab.running(shop(ALL)) as broker:
        assert (await broker.send(event())).status_code == 202
        assert broker.broker.health()["inFlight"] == 1
        await broker.broker.stop()
        assert broker.outcomes(Outcome.DELIVERED)


async def test_stop_abandons_what_is_still_in_flight_after_the_drain_timeout(lab: Lab) -> None:
    lab.subscribers.answer("f", then=Reply(delay=0.5))
    async with lab.running(shop(ALL), drain_timeout=0.05) as broker:
        assert (await broker.send(event())).status_code == 202
        await broker.broker.stop()
        assert broker.broker.health() == {
            "status": "stopped",
            "broker": "default/default",
            "inFlight": 0,
        }
    assert not broker.outcomes(Outcome.DELIVERED)


async def test_the_command_line_runs_the_broker_and_logs_each_delivery(lab: Lab) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "functions.dev.broker",
        "--port",
        str(port),
        "--subscribers",
        json.dumps(lab.subscribers.endpoints("analytics")),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):
                try:
                    await client.get("/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            headers = {"ce-specversion": "1.0", "ce-id": "cli-1", "ce-source": "/kshop/tests"}
            headers["ce-type"] = "kshop.test.happened"
            response = await client.post("/default/default", headers=headers)
            assert response.status_code == 202
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = await process.communicate()
    # uvicorn shuts down gracefully (the broker drains), then re-raises the signal.
    assert process.returncode == -signal.SIGTERM
    (request,) = lab.subscribers.requests["analytics"]
    assert request.headers["ce-id"] == "cli-1"
    lines = stdout.decode().splitlines()
    assert any(
        "delivered" in line and "id=cli-1" in line and "trigger=analytics-kshop-events" in line
        for line in lines
    ), lines
