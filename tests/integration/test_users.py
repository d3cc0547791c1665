"""The users API against real MongoDB-wire, Redis and an HTTP broker (a recording sink)."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from functions.dev.services import free_port
from functions.runtime import clients, outbox
from functions.runtime.bearer import mint
from functions.runtime.settings import settings
from functions.runtime.testing import running
from functions.users import main as users
from functions.users import store
from functions.users.model import User
from tests.fixtures.services import ServiceEnv
from tests.support.servers import Recorder, serving

pytestmark = pytest.mark.integration

SECRET = "a-secret-for-the-users-tests-of-32-bytes"
ORIGIN = "https://shop.example"
EVERY_PERMISSION = ("user:create", "user:read", "user:update", "user:delete", "user:list")
ERROR_KEYS = {"error", "details", "requestId"}
MISSING = "01900000-0000-7000-8000-000000000000"


def auth(*permissions: str, sub: str = "admin") -> dict[str, str]:
    return {"authorization": f"Bearer {mint(sub, permissions)}"}


def admin() -> dict[str, str]:
    return auth(*EVERY_PERMISSION)


@dataclass
class Api:
    http: httpx.AsyncClient
    sink: Recorder

    async def create(self, name: str = "Ada Lovelace", email: str = "ada@example.com") -> Any:
        response = await self.http.post(
            "/users", json={"name": name, "email": email}, headers=admin()
        )
        assert response.status_code == 201, response.text
        return response.json()

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            {"type": r.headers["ce-type"], "subject": r.headers.get("ce-subject")}
            | {"data": json.loads(r.body)}
            for r in self.sink.requests
            if event_type is None or r.headers["ce-type"] == event_type
        ]


def configure(monkeypatch: pytest.MonkeyPatch, sink_url: str) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("CORS_ORIGINS", ORIGIN)
    monkeypatch.setenv("K_SINK", sink_url)
    settings.cache_clear()


@pytest.fixture
async def api(service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    sink = Recorder()
    async with serving(sink) as sink_url:
        configure(monkeypatch, sink_url)
        async with running(users.function) as client:
            yield Api(client.http, sink)


async def document(user_id: str) -> dict[str, Any] | None:
    return await clients.mongo()["users"].find_one({"_id": user_id})


# --- POST /users ----------------------------------------------------------------------


async def test_create_answers_201_with_the_user_and_announces_it(api: Api) -> None:
    response = await api.http.post(
        "/users", json={"name": "  Ada Lovelace ", "email": "Ada@Example.COM"}, headers=admin()
    )
    assert response.status_code == 201
    user = response.json()
    assert set(user) == {"id", "name", "email", "status", "createdAt", "updatedAt"}
    assert user["name"] == "Ada Lovelace"  # trimmed
    assert user["email"] == "Ada@example.com"  # the domain normalized, the local part kept
    assert user["status"] == "active"
    assert user["createdAt"] == user["updatedAt"]
    assert response.headers["location"] == f"/users/{user['id']}"
    assert response.headers["etag"]
    assert api.events() == [
        {
            "type": "kshop.user.created",
            "subject": user["id"],
            "data": {"id": user["id"], "name": "Ada Lovelace", "email": "Ada@example.com"},
        }
    ]
    assert api.sink.requests[0].headers["ce-source"] == "/kshop/users"
    stored = await document(user["id"])
    assert stored is not None and stored[outbox.FIELD] == []  # sent, so gone from the outbox


async def test_ids_are_uuid7_and_unguessable(api: Api) -> None:
    first = (await api.create(email="a@example.com"))["id"]
    second = (await api.create(email="b@example.com"))["id"]
    assert first[14] == second[14] == "7"
    assert first < second  # time-ordered
    assert first[-12:] != second[-12:]  # the random tail differs


@pytest.mark.parametrize(
    "name",
    [
        "Zoë Ångström",
        "李小龍",
        "محمد صلاح",
        "Ådne Øyvind 🦄",
        "Nguyễn Thị Minh Khai",
        "O'Brien-Łukasz",
    ],
)
async def test_unicode_names_round_trip(api: Api, name: str) -> None:
    created = await api.create(name=name)
    read = await api.http.get(f"/users/{created['id']}", headers=admin())
    assert read.json()["name"] == name
    assert api.events()[0]["data"]["name"] == name


async def test_a_name_typed_in_decomposed_form_is_stored_composed(api: Api) -> None:
    created = await api.create(name="Zoe\u0308")
    assert created["name"] == "Zo\u00eb"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "A", "email": "a@example.com"}, {"name"}),
        ({"name": "   A   ", "email": "a@example.com"}, {"name"}),
        ({"name": "x" * 101, "email": "a@example.com"}, {"name"}),
        ({"name": "Ada\u0000Lovelace", "email": "a@example.com"}, {"name"}),
        ({"name": "\u200b\u200b\u200b", "email": "a@example.com"}, {"name"}),
        ({"name": "\u202eAda Lovelace", "email": "a@example.com"}, {"name"}),
        ({"name": "Ada\uffff", "email": "a@example.com"}, {"name"}),
        ({"name": "Ada", "email": "not-an-email"}, {"email"}),
        ({"name": "Ada", "email": "ada@localhost"}, {"email"}),
        ({"name": "Ada"}, {"email"}),
        ({"name": "Ada", "email": "a@example.com", "status": "admin"}, {"status"}),
        ({"name": 42, "email": ["a@example.com"]}, {"name", "email"}),
    ],
)
async def test_invalid_bodies_are_400_with_details(
    api: Api, body: dict[str, Any], fields: set[str]
) -> None:
    response = await api.http.post("/users", json=body, headers=admin())
    assert response.status_code == 400
    error = response.json()
    assert set(error) == ERROR_KEYS
    assert error["error"] == "Validation failed"
    assert {d["field"] for d in error["details"]} == fields
    assert api.sink.requests == []


async def test_invalid_json_is_400(api: Api) -> None:
    response = await api.http.post(
        "/users",
        content=b'{"name": "Ada", ',
        headers={**admin(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid JSON"


async def test_an_oversized_body_is_413(api: Api) -> None:
    body = {"name": "x" * (300 * 1024), "email": "a@example.com"}
    response = await api.http.post("/users", json=body, headers=admin())
    assert response.status_code == 413
    assert set(response.json()) == ERROR_KEYS


async def test_email_is_unique_whatever_its_case(api: Api) -> None:
    await api.create(email="Ada@Example.com")
    response = await api.http.post(
        "/users", json={"name": "Another Ada", "email": "ADA@EXAMPLE.COM"}, headers=admin()
    )
    assert response.status_code == 409
    assert response.json()["details"] == [{"field": "email", "message": "is already in use"}]
    assert len(api.events()) == 1


async def test_cors_headers_come_from_configuration(api: Api) -> None:
    response = await api.http.post(
        "/users",
        json={"name": "Ada", "email": "ada@example.com"},
        headers={**admin(), "origin": ORIGIN},
    )
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == ORIGIN
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "location"} <= exposed
    stranger = await api.http.get("/users", headers={**admin(), "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers


# --- GET /users/{id} ---------------------------------------------------------------------


async def test_read_gives_the_user_an_etag_and_cache_control(api: Api) -> None:
    created = await api.create()
    response = await api.http.get(f"/users/{created['id']}", headers=admin())
    assert response.status_code == 200
    assert response.json() == created
    assert "max-age=300" in response.headers["cache-control"]
    assert "private" in response.headers["cache-control"]
    assert response.headers["etag"].startswith('"')


async def test_if_none_match_with_the_current_tag_is_304(api: Api) -> None:
    created = await api.http.post(
        "/users", json={"name": "Ada", "email": "ada@example.com"}, headers=admin()
    )
    path = f"/users/{created.json()['id']}"
    tag = (await api.http.get(path, headers=admin())).headers["etag"]
    assert tag == created.headers["etag"]
    for condition in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        response = await api.http.get(path, headers={**admin(), "if-none-match": condition})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == tag
    stale = await api.http.get(path, headers={**admin(), "if-none-match": '"other"'})
    assert stale.status_code == 200


async def test_a_missing_user_is_404(api: Api) -> None:
    response = await api.http.get(f"/users/{MISSING}", headers=admin())
    assert response.status_code == 404
    assert set(response.json()) == ERROR_KEYS


@pytest.mark.parametrize(
    ("user_id", "status"),
    [
        ("not-a-uuid", 400),
        ("01900000-0000-4000-8000-000000000000", 400),  # a UUIDv4: never one of ours
        ("01900000-0000-7000-8000-00000000000Z", 400),
        ("01900000-0000-7000-8000-00000000000A", 400),  # not canonical (lower case)
        ("../../admin", 404),  # no route has a slash in an id
    ],
)
async def test_ids_from_the_path_are_validated(api: Api, user_id: str, status: int) -> None:
    response = await api.http.get(f"/users/{quote(user_id, safe='')}", headers=admin())
    assert response.status_code == status
    assert set(response.json()) == ERROR_KEYS
    if status == 400:
        assert response.json()["details"][0]["field"] == "path.user_id"


async def test_reads_come_from_the_cache(api: Api) -> None:
    created = await api.create()
    path = f"/users/{created['id']}"
    await api.http.get(path, headers=admin())
    cached = await store.cache.get(created["id"])
    assert cached is not None and cached.user is not None
    assert cached.user.name == "Ada Lovelace"
    # Behind the API's back: a cached read does not see it.
    await clients.mongo()["users"].update_one({"_id": created["id"]}, {"$set": {"name": "Eve"}})
    assert (await api.http.get(path, headers=admin())).json()["name"] == "Ada Lovelace"


async def test_update_and_delete_invalidate_the_cache(api: Api) -> None:
    created = await api.create()
    path = f"/users/{created['id']}"
    old_tag = (await api.http.get(path, headers=admin())).headers["etag"]
    await api.http.patch(path, json={"name": "Ada King"}, headers=admin())
    response = await api.http.get(path, headers={**admin(), "if-none-match": old_tag})
    assert response.status_code == 200
    assert response.json()["name"] == "Ada King"
    assert (await api.http.delete(path, headers=admin())).status_code == 204
    assert (await api.http.get(path, headers=admin())).status_code == 404


async def test_a_read_that_raced_a_write_cannot_put_the_old_user_back(api: Api) -> None:
    created = await api.create()
    before = await document(created["id"])
    assert before is not None
    await api.http.patch(f"/users/{created['id']}", json={"name": "Ada King"}, headers=admin())
    # The slow reader read version 1 before the update, and fills the cache now.
    await store.remember(
        created["id"], store.Cached(version=before["version"], user=User.model_validate(created))
    )
    read = await api.http.get(f"/users/{created['id']}", headers=admin())
    assert read.json()["name"] == "Ada King"


# --- PATCH /users/{id} -------------------------------------------------------------------


async def test_update_changes_fields_sets_updated_at_and_announces_the_change(api: Api) -> None:
    created = await api.create()
    response = await api.http.patch(
        f"/users/{created['id']}", json={"email": "countess@example.com"}, headers=admin()
    )
    assert response.status_code == 200
    user = response.json()
    assert user["email"] == "countess@example.com"
    assert user["name"] == created["name"]
    assert user["createdAt"] == created["createdAt"]
    assert user["updatedAt"] > created["updatedAt"]
    assert response.headers["etag"]
    [event] = api.events("kshop.user.updated")
    assert event["data"] == {"id": created["id"], "name": None, "email": "countess@example.com"}


async def test_an_update_that_changes_nothing_writes_and_announces_nothing(api: Api) -> None:
    created = await api.create()
    path = f"/users/{created['id']}"
    for body in ({}, {"name": created["name"]}):
        response = await api.http.patch(path, json=body, headers=admin())
        assert response.status_code == 200
        assert response.json() == created
    assert api.events("kshop.user.updated") == []


async def test_concurrent_updates_all_land_and_each_is_announced(api: Api) -> None:
    created = await api.create()
    path = f"/users/{created['id']}"
    names = [f"Ada {n}" for n in range(5)]
    responses = await asyncio.gather(
        *(api.http.patch(path, json={"name": name}, headers=admin()) for name in names)
    )
    assert [r.status_code for r in responses] == [200] * 5
    # Concurrent flushes may send an entry twice, always under its one id.
    announced = {
        r.headers["ce-id"]: json.loads(r.body)["name"]
        for r in api.sink.requests
        if r.headers["ce-type"] == "kshop.user.updated"
    }
    assert sorted(announced.values()) == names  # every write won once, none was lost
    stored = await document(created["id"])
    assert stored is not None and stored["version"] == 6 and stored[outbox.FIELD] == []
    assert (await api.http.get(path, headers=admin())).json()["name"] == stored["name"]


async def test_update_of_a_missing_user_is_404(api: Api) -> None:
    response = await api.http.patch(f"/users/{MISSING}", json={"name": "Eve"}, headers=admin())
    assert response.status_code == 404


async def test_update_to_a_taken_email_is_409_in_any_case(api: Api) -> None:
    await api.create(email="ada@example.com")
    other = await api.create(name="Grace", email="grace@example.com")
    response = await api.http.patch(
        f"/users/{other['id']}", json={"email": "ADA@example.com"}, headers=admin()
    )
    assert response.status_code == 409
    unchanged = await api.http.get(f"/users/{other['id']}", headers=admin())
    assert unchanged.json()["email"] == "grace@example.com"


async def test_changing_only_the_case_of_ones_own_email_is_allowed(api: Api) -> None:
    created = await api.create(email="ada@example.com")
    response = await api.http.patch(
        f"/users/{created['id']}", json={"email": "Ada@example.com"}, headers=admin()
    )
    assert response.status_code == 200
    assert response.json()["email"] == "Ada@example.com"


@pytest.mark.parametrize(
    "body",
    [{"name": None}, {"name": "A"}, {"email": "nope"}, {"status": "deleted"}, {"id": MISSING}],
)
async def test_invalid_updates_are_400(api: Api, body: dict[str, Any]) -> None:
    created = await api.create()
    response = await api.http.patch(f"/users/{created['id']}", json=body, headers=admin())
    assert response.status_code == 400
    assert response.json()["error"] == "Validation failed"
    assert [d["field"] for d in response.json()["details"]] == list(body)


# --- DELETE /users/{id} ------------------------------------------------------------------


async def test_delete_removes_the_personal_data_everywhere(
    api: Api, service_env: ServiceEnv
) -> None:
    created = await api.create(name="Ada Lovelace", email="ada@example.com")
    path = f"/users/{created['id']}"
    await api.http.get(path, headers=admin())  # now cached too
    response = await api.http.delete(path, headers=admin())
    assert response.status_code == 204
    assert response.content == b""
    assert await document(created["id"]) is None  # its events are out, so it is gone
    redis = clients.redis()
    for key in [k async for k in redis.scan_iter(match=f"{service_env.redis_prefix}*")]:
        value = await redis.get(key) if await redis.type(key) == b"string" else b""
        assert b"ada@example.com" not in (value or b"")
        assert b"Ada Lovelace" not in (value or b"")
    [event] = api.events("kshop.user.deleted")
    assert event["data"] == {"id": created["id"]}


async def test_a_deleted_user_is_404_and_its_email_is_free_again(api: Api) -> None:
    created = await api.create(email="ada@example.com")
    path = f"/users/{created['id']}"
    await api.http.delete(path, headers=admin())
    assert (await api.http.delete(path, headers=admin())).status_code == 404
    assert (await api.http.get(path, headers=admin())).status_code == 404
    assert (await api.http.patch(path, json={"name": "Eve"}, headers=admin())).status_code == 404
    again = await api.create(email="ADA@example.com")
    assert again["id"] != created["id"]


async def test_delete_of_a_missing_user_is_404(api: Api) -> None:
    assert (await api.http.delete(f"/users/{MISSING}", headers=admin())).status_code == 404


# --- GET /users ------------------------------------------------------------------------


async def test_list_pages_through_users_with_a_cursor(api: Api) -> None:
    made = [await api.create(name=f"User {i}", email=f"u{i}@example.com") for i in range(5)]
    await api.http.delete(f"/users/{made[2]['id']}", headers=admin())
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await api.http.get("/users", params=params, headers=admin())
        assert response.status_code == 200
        page = response.json()
        seen += [u["id"] for u in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [u["id"] for u in made if u is not made[2]]
    assert pages == 2


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "101"}, {"limit": "two"}, {"cursor": "garbage!"}, {"cursor": "e30"}],
)
async def test_bad_list_parameters_are_400(api: Api, params: dict[str, str]) -> None:
    response = await api.http.get("/users", params=params, headers=admin())
    assert response.status_code == 400
    assert response.json()["error"] == "Validation failed"


# --- permissions ----------------------------------------------------------------------


async def call(api: Api, operation: str, user_id: str, headers: dict[str, str]) -> int:
    path = f"/users/{user_id}"
    if operation == "create":
        body = {"name": "Someone", "email": "someone@example.com"}
        response = await api.http.post("/users", json=body, headers=headers)
    elif operation == "read":
        response = await api.http.get(path, headers=headers)
    elif operation == "update":
        response = await api.http.patch(path, json={"name": "Renamed"}, headers=headers)
    elif operation == "delete":
        response = await api.http.delete(path, headers=headers)
    else:
        response = await api.http.get("/users", headers=headers)
    if response.status_code in {401, 403}:
        assert set(response.json()) == ERROR_KEYS
    return response.status_code


MATRIX = [
    ("create", (), False, 403),
    ("create", ("user:read", "user:update", "user:list"), False, 403),
    ("create", ("user:create",), False, 201),
    ("read", (), False, 403),
    ("read", ("user:update", "user:list"), False, 403),
    ("read", ("user:read",), False, 200),
    ("read", (), True, 200),
    ("update", (), False, 403),
    ("update", ("user:read",), False, 403),
    ("update", ("user:update",), False, 200),
    ("update", (), True, 200),
    ("delete", (), False, 403),
    ("delete", (), True, 403),  # a user may not delete themself without user:delete
    ("delete", ("user:update",), False, 403),
    ("delete", ("user:delete",), False, 204),
    ("list", (), False, 403),
    ("list", ("user:read",), False, 403),
    ("list", ("user:list",), False, 200),
]


@pytest.mark.parametrize(("operation", "permissions", "is_self", "status"), MATRIX)
async def test_the_permission_matrix(
    api: Api, operation: str, permissions: tuple[str, ...], is_self: bool, status: int
) -> None:
    target = (await api.create())["id"]
    headers = auth(*permissions, sub=target if is_self else "someone-else")
    assert await call(api, operation, target, headers) == status


@pytest.mark.parametrize("operation", ["create", "read", "update", "delete", "list"])
async def test_without_a_valid_token_every_route_is_401(api: Api, operation: str) -> None:
    target = (await api.create())["id"]
    expired = {"authorization": f"Bearer {mint('admin', EVERY_PERMISSION, ttl=-60)}"}
    forged = {"authorization": admin()["authorization"][:-4] + "AAAA"}
    for headers in ({}, expired, forged, {"authorization": "Basic YWRtaW46YWRtaW4="}):
        assert await call(api, operation, target, headers) == 401
    response = await api.http.get("/users", headers=expired)
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- operator injection ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"name": {"$gt": ""}, "email": "a@example.com"},
        {"name": "Ada", "email": {"$ne": None}},
        {"name": "Ada", "email": {"$regex": ".*"}},
        {"name": "Ada", "email": "a@example.com", "$where": "sleep(1000)"},
        {"$set": {"status": "admin"}},
    ],
)
async def test_operators_in_a_body_are_refused(api: Api, body: dict[str, Any]) -> None:
    victim = await api.create(email="victim@example.com")
    created = await api.http.post("/users", json=body, headers=admin())
    updated = await api.http.patch(f"/users/{victim['id']}", json=body, headers=admin())
    assert created.status_code == updated.status_code == 400
    assert (await api.http.get(f"/users/{victim['id']}", headers=admin())).json() == victim
    assert await clients.mongo()["users"].count_documents({}) == 1


@pytest.mark.parametrize(
    "user_id", ['{"$gt":""}', '{"$ne":null}', "[$ne]=1", "';return true;var a='"]
)
async def test_operators_in_a_path_are_refused(api: Api, user_id: str) -> None:
    await api.create()
    path = f"/users/{quote(user_id, safe='')}"
    for method in ("GET", "PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"name": "Mallory"}} if method == "PATCH" else {}
        response = await api.http.request(method, path, headers=admin(), **kwargs)
        assert response.status_code == 400, (method, response.text)
    assert await clients.mongo()["users"].count_documents({"name": "Mallory"}) == 0


@pytest.mark.parametrize("query", ['cursor={"$gt":""}', "limit[$ne]=1&limit=x"])
async def test_operators_in_the_query_string_are_refused(api: Api, query: str) -> None:
    await api.create()
    response = await api.http.get(f"/users?{query}", headers=admin())
    assert response.status_code == 400


# --- dependencies failing ------------------------------------------------------------------


async def test_without_redis_reads_still_work_and_writes_fail_before_changing_anything(
    service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = Recorder()
    async with serving(sink) as sink_url:
        configure(monkeypatch, sink_url)
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
        settings.cache_clear()
        async with running(users.function) as client:
            api = Api(client.http, sink)
            created = await api.create()
            path = f"/users/{created['id']}"
            assert (await api.http.get(path, headers=admin())).json() == created
            response = await api.http.patch(path, json={"name": "Eve"}, headers=admin())
            assert response.status_code == 503
            assert (await api.http.delete(path, headers=admin())).status_code == 503
            assert (await api.http.get(path, headers=admin())).json() == created


# --- OpenAPI -------------------------------------------------------------------------------


async def test_openapi_lists_every_route_with_its_auth_and_errors(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    operations = {
        (method.upper(), path): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == {
        ("POST", "/users"),
        ("GET", "/users"),
        ("GET", "/users/{user_id}"),
        ("PATCH", "/users/{user_id}"),
        ("DELETE", "/users/{user_id}"),
    }
    for (method, path), operation in operations.items():
        assert operation["security"] == [{"HTTPBearer": []}], (method, path)
        assert {"400", "401", "403", "413", "500", "503"} <= set(operation["responses"])
        assert "user:" in operation["description"] or "user:" in operation.get("summary", "")
    assert "409" in operations[("POST", "/users")]["responses"]
    assert "304" in operations[("GET", "/users/{user_id}")]["responses"]
    assert "404" in operations[("DELETE", "/users/{user_id}")]["responses"]
    assert (await api.http.get("/docs")).status_code == 200
