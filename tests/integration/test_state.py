"""The runtime's typed Redis state against a real Redis: TTLs, JSON, check-and-set."""

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis
from pydantic import BaseModel, ValidationError

from functions.runtime import Conflict, clients
from functions.runtime.settings import settings
from functions.runtime.state import State
from tests.fixtures.services import ServiceEnv

pytestmark = pytest.mark.integration


class Counter(BaseModel):
    count: int
    owner: str


@pytest.fixture
async def state(service_env: ServiceEnv) -> AsyncIterator[State[Counter]]:
    settings.cache_clear()
    yield State(Counter, "tests", "counters", ttl=30)
    await clients.close()


async def test_a_value_reads_back_as_its_type(state: State[Counter]) -> None:
    await state.set("a", Counter(count=1, owner="Zoë"))
    assert await state.get("a") == Counter(count=1, owner="Zoë")
    assert await state.get("missing") is None


async def test_values_are_json_under_the_deployment_prefix(
    state: State[Counter], service_env: ServiceEnv
) -> None:
    await state.set("a", Counter(count=1, owner="x"))
    key = state.key("a")
    assert key.startswith(service_env.redis_prefix)
    assert await clients.redis().get(key) == b'{"count":1,"owner":"x"}'


async def test_every_value_has_a_ttl(state: State[Counter]) -> None:
    await state.set("default", Counter(count=1, owner="x"))
    await state.set("short", Counter(count=1, owner="x"), ttl=0.2)
    redis = clients.redis()
    assert 29_000 < await redis.pttl(state.key("default")) <= 30_000
    assert 0 < await redis.pttl(state.key("short")) <= 200
    await asyncio.sleep(0.3)
    assert await state.get("short") is None


async def test_a_state_without_expiry_is_refused() -> None:
    with pytest.raises(ValueError, match="ttl"):
        State(Counter, "tests", ttl=0)


async def test_delete_says_whether_there_was_a_value(state: State[Counter]) -> None:
    await state.set("a", Counter(count=1, owner="x"))
    assert await state.delete("a") is True
    assert await state.delete("a") is False
    assert await state.get("a") is None


async def test_add_sets_only_when_absent(state: State[Counter]) -> None:
    assert await state.add("a", Counter(count=1, owner="first")) is True
    assert await state.add("a", Counter(count=2, owner="second")) is False
    assert await state.get("a") == Counter(count=1, owner="first")


async def test_a_value_of_another_shape_is_an_error_not_a_wrong_value(
    state: State[Counter],
) -> None:
    await clients.redis().set(state.key("a"), b'{"count": "many"}')
    with pytest.raises(ValidationError):
        await state.get("a")


async def test_plain_json_types_work_too(service_env: ServiceEnv) -> None:
    settings.cache_clear()
    tags: State[dict[str, list[int]]] = State(dict[str, list[int]], "tests", "tags", ttl=5)
    try:
        await tags.set("a", {"x": [1, 2]})
        assert await tags.get("a") == {"x": [1, 2]}
    finally:
        await clients.close()


def increment(owner: str) -> Callable[[Counter | None], Counter]:
    def change(current: Counter | None) -> Counter:
        return Counter(count=(current.count if current else 0) + 1, owner=owner)

    return change


async def test_update_applies_a_change_to_the_current_value(state: State[Counter]) -> None:
    assert await state.update("a", increment("x")) == Counter(count=1, owner="x")
    assert await state.update("a", increment("y")) == Counter(count=2, owner="y")
    assert await state.get("a") == Counter(count=2, owner="y")


async def test_update_can_delete_or_leave_alone(state: State[Counter]) -> None:
    await state.set("a", Counter(count=1, owner="x"), ttl=10)
    assert await state.update("a", lambda current: current) == Counter(count=1, owner="x")
    assert 0 < await clients.redis().pttl(state.key("a")) <= 10_000  # TTL untouched
    assert await state.update("a", lambda current: None) is None
    assert await state.get("a") is None


def rival_write(state: State[Counter], value: Counter) -> None:
    """A write from another connection, landing between our WATCH and our EXEC."""
    with redis.Redis.from_url(settings().redis_url) as other:
        other.set(state.key("a"), value.model_dump_json())


async def test_update_runs_again_on_the_value_a_rival_wrote(state: State[Counter]) -> None:
    await state.set("a", Counter(count=1, owner="x"))
    seen: list[int] = []

    def change(current: Counter | None) -> Counter:
        assert current is not None
        seen.append(current.count)
        if len(seen) == 1:
            rival_write(state, Counter(count=10, owner="rival"))
        return Counter(count=current.count + 1, owner="x")

    assert await state.update("a", change) == Counter(count=11, owner="x")
    assert seen == [1, 10]  # the first attempt's blind write never happened
    assert await state.get("a") == Counter(count=11, owner="x")


async def test_concurrent_updates_lose_no_increment(state: State[Counter]) -> None:
    await asyncio.gather(*(state.update("a", increment(f"w{i}")) for i in range(20)))
    final = await state.get("a")
    assert final is not None and final.count == 20


async def test_update_gives_up_with_409_when_the_key_never_settles(
    state: State[Counter],
) -> None:
    await state.set("a", Counter(count=0, owner="x"))
    rival = Counter(count=99, owner="rival")

    def change(current: Counter | None) -> Counter:
        rival_write(state, rival)
        return Counter(count=1, owner="x")

    with pytest.raises(Conflict):
        await state.update("a", change, attempts=3)
    assert await state.get("a") == rival
