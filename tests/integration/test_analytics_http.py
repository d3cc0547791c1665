"""The first function end to end over real HTTP: analytics in its own process, real Redis."""

from collections.abc import Iterator

import httpx
import pytest

from functions.dev.services import free_port
from functions.runtime import bearer, codec
from functions.runtime.settings import Settings
from functions.runtime.testing import cloudevent
from tests.fixtures.services import ServiceEnv
from tests.support.processes import Served, serve

pytestmark = pytest.mark.integration

SECRET = "analytics-test-secret-0123456789abcdef"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def analytics(service_env: ServiceEnv) -> Iterator[Served]:
    env = {
        "FUNCTION": "analytics",
        "REDIS_URL": service_env.redis_url,
        "REDIS_PREFIX": service_env.redis_prefix,
        "JWT_SECRET": SECRET,
    }
    with serve(["-m", "functions"], free_port(), env) as served:
        yield served


def post(served: Served, event_type: str, event_id: str, **extensions: str) -> httpx.Response:
    event = cloudevent(
        {"id": "u-42", "name": "Ada"}, type=event_type, id=event_id, extensions=extensions
    )
    headers, body = codec.encode(event)
    return httpx.post(served.url, headers=headers, content=body, timeout=10)


def summary(served: Served) -> dict[str, object]:
    token = bearer.mint("admin", ["analytics:read"], config=Settings(jwt_secret=SECRET))
    response = httpx.get(
        f"{served.url}/analytics/summary", headers={"authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200
    return dict(response.json()["totals"])


def test_a_duplicate_delivery_gets_the_same_reply_and_counts_once(analytics: Served) -> None:
    first = post(analytics, "kshop.user.created", "evt-1")
    assert first.status_code == 200
    assert first.headers["ce-type"] == "kshop.analytics.milestone.reached"
    again = post(analytics, "kshop.user.created", "evt-1")
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["ce-id"] == first.headers["ce-id"]
    assert summary(analytics) == {"events": 1, "activeUsers": 1, "orders": 0, "revenueCents": 0}


def test_a_second_event_is_counted_without_a_milestone(analytics: Served) -> None:
    assert post(analytics, "kshop.user.created", "evt-1").status_code == 200
    second = post(analytics, "kshop.user.created", "evt-2")
    assert (second.status_code, second.content) == (202, b"")
    assert summary(analytics)["events"] == 2


def test_the_reply_carries_the_incoming_trace(analytics: Served) -> None:
    traceparent = f"00-{TRACE_ID}-b7ad6b7169203331-01"
    reply = post(analytics, "kshop.user.created", "evt-t", traceparent=traceparent)
    assert reply.headers["ce-traceparent"].split("-")[1] == TRACE_ID


def test_metrics_show_the_invocations_and_the_cold_start(analytics: Served) -> None:
    post(analytics, "kshop.user.created", "evt-m")
    post(analytics, "kshop.user.created", "evt-m")
    metrics = httpx.get(f"{analytics.url}/metrics", timeout=10).text
    assert (
        'kshop_duplicates_suppressed_total{function="analytics",type="kshop.user.created"} 1.0'
        in metrics
    )
    cold_start = next(
        line for line in metrics.splitlines() if line.startswith("kshop_cold_start_seconds{")
    )
    assert 0 < float(cold_start.split()[-1]) < 30
