"""A function's HTTP API: kshop's error shape, body limits, CORS and metrics by route."""

from collections.abc import AsyncIterator

import httpx
import pytest

from functions.runtime.settings import settings
from functions.runtime.testing import Client, running
from tests.fixtures.services import ServiceEnv
from tests.support import sample

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("CORS_ORIGINS", "https://shop.example")
    monkeypatch.setenv("MAX_BODY_BYTES", "1000")
    settings.cache_clear()
    async with running(sample.function) as client:
        yield client


async def test_a_valid_request_is_served(client: Client) -> None:
    response = await client.http.post("/greetings", json={"name": "Zoë"})
    assert response.status_code == 201
    assert response.json() == {"greeting": "hello Zoë"}


async def test_validation_errors_are_400_in_the_one_shape(client: Client) -> None:
    response = await client.http.post("/greetings", json={"name": "", "admin": True})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Validation failed"
    assert {d["field"] for d in body["details"]} == {"name", "admin"}
    assert "requestId" in body


async def test_invalid_json_is_400(client: Client) -> None:
    response = await client.http.post(
        "/greetings", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid JSON"


async def test_a_wrong_type_is_a_validation_error_not_a_crash(client: Client) -> None:
    response = await client.http.post("/greetings", json={"name": {"$gt": ""}})
    assert response.status_code == 400


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_oversized_body_is_413(client: Client, chunked: bool) -> None:
    payload = b'{"name": "' + b"x" * 2000 + b'"}'

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 100):
            yield payload[i : i + 100]

    content = stream() if chunked else payload
    response = await client.http.post(
        "/greetings", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"].startswith("The body is larger")


async def test_an_unknown_route_is_404_in_the_one_shape(client: Client) -> None:
    response = await client.http.get("/nothing-here", headers={"x-request-id": "r-1"})
    assert response.status_code == 404
    assert response.json()["requestId"] == "r-1"


async def test_cors_allows_the_configured_origin_only(client: Client) -> None:
    preflight = {"access-control-request-method": "POST"}
    allowed = await client.http.options(
        "/greetings", headers={"origin": "https://shop.example", **preflight}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    denied = await client.http.options(
        "/greetings", headers={"origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in denied.headers


async def test_openapi_documents_routes_auth_and_errors(client: Client) -> None:
    spec = (await client.http.get("/openapi.json")).json()
    whoami = spec["paths"]["/whoami"]["get"]
    assert {"401", "403", "400", "500"} <= set(whoami["responses"])
    assert whoami["security"]
    assert (await client.http.get("/docs")).status_code == 200


async def test_metrics_count_requests_by_route_template(client: Client) -> None:
    await client.http.post("/greetings", json={"name": "a"})
    metrics = (await client.http.get("/metrics")).text
    assert (
        'kshop_invocations_total{function="sample",kind="http",name="POST /greetings",status="201"}'
        in metrics
    )
    assert 'kshop_cold_start_seconds{function="sample"}' in metrics


async def test_the_api_is_built_on_the_first_request_only_and_announced_as_long_lived(
    service_env: ServiceEnv,
) -> None:
    app = sample.function.app()
    announced: list[bool] = []
    app.on_long_lived = lambda: announced.append(app._api is not None)  # serve freezes it then
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://function") as http:
            assert (await http.get("/health/live")).status_code == 200
            assert announced == []  # health and events never build it
            for name in ("a", "b"):
                assert (await http.post("/greetings", json={"name": name})).status_code == 201
    finally:
        await app.shutdown()
    assert announced == [True]
