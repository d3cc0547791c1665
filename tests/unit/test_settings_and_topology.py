"""Settings from the environment, and the topology's own checks."""

from pathlib import Path
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


def test_a_sink_binding_without_overrides_or_ca_sets_them_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("K_CE_OVERRIDES", "")
    monkeypatch.setenv("K_CA_CERTS", "")
    config = Settings()
    assert (config.k_ce_overrides.extensions, config.k_ca_certs) == ({}, None)


def test_a_sink_bindings_overrides_are_read_as_it_writes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fields other than extensions (a later Knative's) are ignored, not fatal.
    monkeypatch.setenv("K_CE_OVERRIDES", '{"extensions": {"team": "blue"}, "later": 1}')
    assert Settings().k_ce_overrides.extensions == {"team": "blue"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "0"),
        ("PORT", "http"),
        ("K_SINK", "broker:8080"),
        ("REDIS_URL", "localhost:6379"),
        ("MONGODB_URL", "postgres://x"),
        ("MONGODB_DATABASE", "a/b"),
        ("MONGODB_DATABASE", "kshop\n"),  # Python's `$` would let the newline through
        ("SMTP_TLS", "maybe"),
        ("LOG_LEVEL", "LOUD"),
        ("IDEMPOTENCY_TTL", "-1"),
        ("K_CA_CERTS", "not a certificate"),
        ("K_CE_OVERRIDES", "team=blue"),
        ("K_CE_OVERRIDES", '{"extensions": {"Team": "blue"}}'),
        ("K_CE_OVERRIDES", '{"extensions": {"team_a": "blue"}}'),
        ("K_CE_OVERRIDES", '{"extensions": {"team\\n": "blue"}}'),
        ("K_CE_OVERRIDES", '{"extensions": {"team": 1}}'),
        ("K_CE_OVERRIDES", '{"extensions": {"type": "x"}}'),
        ("K_CE_OVERRIDES", '["team"]'),
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


def test_kshop_dev_gives_every_function_the_charts_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.dev import stack
    from functions.dev.services import SmtpServer

    monkeypatch.setattr(stack, "mongodb_env", lambda url: {})  # it asks the server what it is

    document = values(a={}) | {"eventing": {"ceOverrides": {"extensions": {"team": "blue"}}}}
    loaded = topology.Topology.model_validate(document)
    servers = stack.Servers("mongodb://m", "redis://r", SmtpServer(tmp_path), frozenset())
    programs, _ = stack.plan(loaded, 8080, {"a": 8101, "deadletter": 8102}, servers)
    functions = [program for program in programs if program.name != "broker"]
    assert [program.name for program in functions] == ["a", "deadletter"]
    for program in functions:
        overrides = Settings(k_ce_overrides=program.env["K_CE_OVERRIDES"]).k_ce_overrides
        assert overrides.extensions == {"team": "blue"}
