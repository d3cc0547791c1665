"""Settings from the environment, and the topology's own checks."""

from typing import Any

import pytest
from pydantic import ValidationError

from functions import topology
from functions.runtime.settings import Settings, explain


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", "RS256, ES256")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example,https://b.example")
    config = Settings()
    assert config.jwt_algorithms == ["RS256", "ES256"]
    assert config.cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "0"),
        ("PORT", "http"),
        ("K_SINK", "broker:8080"),
        ("REDIS_URL", "localhost:6379"),
        ("MONGODB_URL", "postgres://x"),
        ("MONGODB_DATABASE", "a/b"),
        ("SMTP_TLS", "maybe"),
        ("LOG_LEVEL", "LOUD"),
        ("IDEMPOTENCY_TTL", "-1"),
    ],
)
def test_a_bad_value_is_explained_by_variable_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert explain(caught.value).startswith(f"{variable}: ")


def values(**functions: Any) -> dict[str, Any]:
    return {
        "broker": {"delivery": {"retry": 1, "deadLetterFunction": "deadletter"}},
        "functions": {"deadletter": {}, **functions},
    }


def test_the_chart_values_are_a_valid_topology() -> None:
    loaded = topology.load()
    assert loaded.broker.delivery is not None
    assert loaded.broker.delivery.dead_letter_function in loaded.functions
    assert all(f.name == n for n, f in loaded.enabled().items())


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ([{"exact": {"type": "a"}, "prefix": {"type": "b"}}], "exactly one dialect"),
        ([{"regex": {"type": "a"}}], "unknown filter dialect"),
        ([{"all": {"exact": {"type": "a"}}}], "must be a list"),
        ([{"any": [{"not": {"suffix": {"type": 1}}}]}], "must map attribute names to strings"),
        ([{"cesql": ["type = 'a'"]}], "must be a string"),
    ],
)
def test_filters_are_checked_like_knatives_webhook(filters: list[Any], message: str) -> None:
    document = values(f={"triggers": [{"name": "t", "filters": filters}]})
    with pytest.raises(ValidationError, match=message):
        topology.Topology.model_validate(document)


def test_attribute_filter_names_follow_knatives_pattern() -> None:
    document = values(f={"triggers": [{"name": "t", "filter": {"attributes": {"Type": "a"}}}]})
    with pytest.raises(ValidationError, match="must match"):
        topology.Topology.model_validate(document)


def test_references_must_name_functions() -> None:
    document = values() | {"pingSources": [{"name": "p", "schedule": "* * * * *", "sink": "x"}]}
    with pytest.raises(ValidationError, match="'x' is referenced but is not a function"):
        topology.Topology.model_validate(document)


def test_trigger_names_are_unique() -> None:
    trigger = {"name": "same"}
    document = values(a={"triggers": [trigger]}, b={"triggers": [trigger]})
    with pytest.raises(ValidationError, match="unique"):
        topology.Topology.model_validate(document)


def test_disabled_functions_are_left_out() -> None:
    loaded = topology.Topology.model_validate(values(off={"enabled": False}))
    assert set(loaded.enabled()) == {"deadletter"}
