"""Schemathesis against the users API served as a real process: no 5xx, no schema violation.

Every operation gets valid and invalid requests generated from its OpenAPI
schema, a few dozen of each, with an all-permissions token. Operations on one
user are also pointed at users that exist, so the 200, 304 and 409 paths are
explored, not only 404.
"""

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from functions.dev.services import free_port
from functions.runtime.bearer import mint
from functions.runtime.settings import Settings
from tests.fixtures.services import ServiceEnv
from tests.support.processes import serve

pytestmark = pytest.mark.integration

SECRET = "a-secret-for-the-schemathesis-run-32b"
PERMISSIONS = ("user:create", "user:read", "user:update", "user:delete", "user:list")
EXAMPLES = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_the_users_api_keeps_its_contract(service_env: ServiceEnv) -> None:
    env = {
        "FUNCTION": "users",
        "MONGODB_URL": service_env.mongodb_url,
        "MONGODB_DATABASE": service_env.mongodb_database,
        "REDIS_URL": service_env.redis_url,
        "REDIS_PREFIX": service_env.redis_prefix,
        "JWT_SECRET": SECRET,
        # No broker: every event stays in the outbox, which is not under test here.
        "K_SINK": f"http://127.0.0.1:{free_port()}",
        "PUBLISH_RETRIES": "0",
        "LOG_LEVEL": "ERROR",
    }
    token = mint("admin", PERMISSIONS, config=Settings(jwt_secret=SECRET))
    headers = {"Authorization": f"Bearer {token}"}
    with serve(["-m", "functions"], free_port(), env) as served:
        seeded = [
            httpx.post(
                f"{served.url}/users",
                json={"name": f"Seed {i}", "email": f"seed{i}@example.com"},
                headers=headers,
            ).json()["id"]
            for i in range(3)
        ]
        schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
        results = list(schema.get_all_operations())
        operations = [result.ok() for result in results if isinstance(result, Ok)]
        assert len(operations) == len(results) == 5
        for operation in operations:
            run(operation, headers, seeded)


def run(operation: Any, headers: dict[str, str], seeded: list[str]) -> None:
    takes_id = any(p.name == "user_id" for p in operation.path_parameters)
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    if takes_id:
        strategies += [
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"user_id": user_id})
            for user_id in seeded
        ]

    # Invalid requests are generated too, to hunt for 5xx; whether the API refuses
    # every one of them (it ignores unknown query parameters) is not the question.
    @given(case=st.one_of(strategies))
    @settings(
        max_examples=EXAMPLES * 2,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
