"""analytics against real Redis: bad data is refused with 400 before anything is counted.

In-process (the hop over real HTTP is test_analytics_http's), so each refusal can be
retried as Knative would retry it and the counters read back through the API.
"""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from functions.analytics import main as analytics
from functions.analytics.events import MAX_ORDER_CENTS
from functions.orders.events import OrderCompleted
from functions.runtime.testing import Answer, Client, cloudevent, running
from tests.fixtures.services import ServiceEnv
from tests.support.shop import bearer, configure_auth

pytestmark = pytest.mark.integration

NOTHING = {"events": 0, "activeUsers": 0, "orders": 0, "revenueCents": 0}


@pytest.fixture
async def client(service_env: ServiceEnv, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    configure_auth(monkeypatch)
    async with running(analytics.function) as client:
        yield client


def completed(**changes: Any) -> dict[str, Any]:
    """A kshop.order.completed event's data, as orders sends it, with `changes` applied."""
    order = OrderCompleted(
        order_id="o-1",
        user_id="alice",
        total_cents=1250,
        currency="EUR",
        carrier="c",
        tracking_number="t",
    )
    return order.model_dump(mode="json", by_alias=True) | changes


async def deliver(client: Client, event_type: str, data: Any, **attributes: Any) -> Answer:
    """One delivery, made twice as Knative retries it: both must get the same answer."""
    event = cloudevent(data, type=event_type, id="evt-1", extensions=attributes)
    first = await client.send(event)
    again = await client.send(event)
    assert (again.status, again.body) == (first.status, first.body)
    return first


async def summary(client: Client, query: str = "") -> tuple[int, Any]:
    response = await client.http.get(
        f"/analytics/summary{query}", headers=bearer("admin", "analytics:read")
    )
    return response.status_code, response.json()


async def totals(client: Client) -> dict[str, int]:
    status, body = await summary(client)
    assert status == 200, body
    return dict(body["totals"])


def fields(answer: Answer) -> list[str]:
    assert answer.status == 400, answer.body
    return [d.get("field") or d.get("attribute") for d in answer.json()["details"]]


# --- order totals: what Redis's INCRBY can add, and nothing else --------------------------


@pytest.mark.parametrize(
    "total",
    [2**70, MAX_ORDER_CENTS + 1, -5000, True, 12.5, "1250", None],
    ids=["beyond-64-bits", "above-the-bound", "negative", "bool", "float", "string", "null"],
)
async def test_an_order_total_analytics_cannot_add_is_refused_and_never_counted(
    client: Client, total: Any
) -> None:
    answer = await deliver(client, "kshop.order.completed", completed(totalCents=total))
    assert fields(answer) == ["totalCents"]
    assert await totals(client) == NOTHING


async def test_an_order_without_a_total_is_refused_rather_than_counted_as_free(
    client: Client,
) -> None:
    data = completed()
    del data["totalCents"]
    assert fields(await deliver(client, "kshop.order.completed", data)) == ["totalCents"]
    assert await totals(client) == NOTHING


@pytest.mark.parametrize("total", [0, MAX_ORDER_CENTS])
async def test_order_totals_up_to_the_bound_are_revenue(client: Client, total: int) -> None:
    answer = await deliver(client, "kshop.order.completed", completed(totalCents=total))
    assert answer.status == 200, answer.body
    expected = {"events": 1, "activeUsers": 1, "orders": 1, "revenueCents": total}
    assert await totals(client) == expected


# --- users: an id is a non-empty string ------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "data", "field"),
    [
        ("kshop.payment.succeeded", {"userId": 42}, "userId"),
        ("kshop.payment.succeeded", {"userId": True}, "userId"),
        ("kshop.payment.succeeded", {"userId": {"id": "alice"}}, "userId"),
        ("kshop.payment.succeeded", {"userId": ""}, "userId"),
        ("kshop.user.created", {"id": 7, "name": "Ada"}, "id"),
        ("kshop.user.deleted", {"id": ["u-1"]}, "id"),
    ],
)
async def test_a_user_id_that_is_not_a_string_is_refused_and_never_counted(
    client: Client, event_type: str, data: dict[str, Any], field: str
) -> None:
    assert fields(await deliver(client, event_type, data)) == [field]
    assert await totals(client) == NOTHING


@pytest.mark.parametrize("data", [[1, 2], "text"], ids=["list", "string"])
async def test_data_that_is_not_an_object_is_refused(client: Client, data: Any) -> None:
    assert fields(await deliver(client, "kshop.payment.succeeded", data)) == ["data"]
    assert await totals(client) == NOTHING


async def test_an_event_without_data_is_counted(client: Client) -> None:
    assert (await deliver(client, "kshop.e2e.sent", None)).status == 200
    assert await totals(client) == {**NOTHING, "events": 1}


async def test_fields_analytics_does_not_read_are_not_its_business(client: Client) -> None:
    data = {"userId": "alice", "anything": {"nested": [1, True]}, "totalCents": "n/a"}
    assert (await deliver(client, "kshop.payment.succeeded", data)).status == 200
    assert await totals(client) == {**NOTHING, "events": 1, "activeUsers": 1}


# --- event times: the UTC day must exist --------------------------------------------------


@pytest.mark.parametrize(
    "time",
    [
        datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
    ],
    ids=["before-year-1", "after-year-9999"],
)
async def test_a_time_whose_utc_day_does_not_exist_is_refused(
    client: Client, time: datetime
) -> None:
    answer = await deliver(client, "kshop.user.created", {"id": "u-1"}, time=time)
    assert answer.json()["details"] == [
        {"attribute": "time", "message": "is outside the years 1 to 9999 in UTC"}
    ]


@pytest.mark.parametrize(
    ("time", "day"),
    [
        (datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-1))), "0001-01-01"),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=5))), "9999-12-31"),
    ],
)
async def test_times_at_the_edges_count_on_their_utc_day(
    client: Client, time: datetime, day: str
) -> None:
    assert (await deliver(client, "kshop.user.created", {"id": "u-1"}, time=time)).status == 200
    status, body = await summary(client, f"?from={day}&to={day}")
    assert status == 200, body
    assert body["totals"]["events"] == 1


# --- the summary's period ----------------------------------------------------------------


@pytest.mark.parametrize("to", ["0001-01-01", "0001-01-03", "0001-01-06"])
async def test_a_default_period_starting_before_year_1_is_refused(client: Client, to: str) -> None:
    status, body = await summary(client, f"?to={to}")
    assert (status, body["error"]) == (400, "Validation failed")
    assert body["details"] == [
        {"field": "from", "message": "is required when `to` is before 0001-01-07"}
    ]
    assert set(body) == {"error", "details", "requestId"}


@pytest.mark.parametrize(
    "query",
    ["?to=0001-01-07", "?from=0001-01-01&to=0001-01-03", "?from=9999-12-25&to=9999-12-31"],
)
async def test_periods_at_the_edges_of_the_calendar_are_summed(client: Client, query: str) -> None:
    status, body = await summary(client, query)
    assert status == 200, body
    assert body["totals"] == NOTHING
