"""The chart lints clean, and bad values fail at install with a message that says why."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from functions.topology import Topology
from tests.packaging.conftest import VARIANTS
from tests.packaging.tools import CHART, NAMESPACE, RELEASE, VALUES, helm, helm_template, run

pytestmark = pytest.mark.packaging


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_strict(variant: str, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(VARIANTS[variant]))
    result = run([helm(), "lint", "--strict", CHART, "--values", values])
    assert result.returncode == 0, result.stdout + result.stderr


def _trigger(**fields: Any) -> dict[str, Any]:
    return {"functions": {"users": {"triggers": [{"name": "users-t", **fields}]}}}


# (values over the defaults, what helm's error must mention, does topology.py refuse it too)
BAD_VALUES: dict[str, tuple[dict[str, Any], str, bool]] = {
    "unknown broker class": ({"broker": {"class": "RabbitMQ"}}, "/broker/class", True),
    "misspelt filter dialect": (_trigger(filters=[{"exakt": {"type": "kshop.x"}}]), "exakt", True),
    "two dialects in one filter": (
        _trigger(filters=[{"exact": {"type": "a"}, "prefix": {"type": "b"}}]),
        "filters/0",
        True,
    ),
    "bad attribute name": (_trigger(filter={"attributes": {"Type": "kshop.x"}}), "Type", True),
    "trigger without a name": (
        {"functions": {"users": {"triggers": [{"filters": []}]}}},
        "name",
        True,
    ),
    "negative retry": ({"broker": {"delivery": {"retry": -1}}}, "retry", True),
    "backoff policy typo": (
        {"broker": {"delivery": {"backoffPolicy": "exponentail"}}},
        "backoffPolicy",
        True,
    ),
    "unknown function field": ({"functions": {"users": {"replicas": 3}}}, "replicas", True),
    "function name not a DNS label": ({"functions": {"Users_2": {"http": True}}}, "Users_2", False),
    "negative min scale": (
        {"functions": {"users": {"scaling": {"minScale": -1}}}},
        "minScale",
        True,
    ),
    "max scale below min scale": (
        {"functions": {"users": {"scaling": {"minScale": 3, "maxScale": 2}}}},
        "maxScale",
        False,
    ),
    "PORT is Knative's": ({"functions": {"users": {"env": {"PORT": "9000"}}}}, "PORT", False),
    "K_CE_OVERRIDES is eventing.ceOverrides's": (
        {"functions": {"users": {"env": {"K_CE_OVERRIDES": "{}"}}}},
        "K_CE_OVERRIDES",
        False,
    ),
    "a secret in the ConfigMap": ({"config": {"SMTP_PASSWORD": "x"}}, "SMTP_PASSWORD", False),
    "@every schedule": (
        {"pingSources": [{"name": "p", "schedule": "@every 1m", "sink": "orders"}]},
        "schedule",
        False,
    ),
    "ping to an unknown function": (
        {"pingSources": [{"name": "p", "schedule": "* * * * *", "sink": "nobody"}]},
        "nobody",
        True,
    ),
    "dead letters to a disabled function": (
        {"functions": {"deadletter": {"enabled": False}}},
        "deadletter",
        False,
    ),
    "an override of a context attribute": (
        {"eventing": {"ceOverrides": {"extensions": {"type": "x"}}}},
        "type",
        False,
    ),
    "an override not lower-case": (
        {"eventing": {"ceOverrides": {"extensions": {"Team": "x"}}}},
        "Team",
        False,
    ),
    "an override that is no string": (
        {"eventing": {"ceOverrides": {"extensions": {"team": 1}}}},
        "team",
        False,
    ),
    "no MongoDB at all": ({"mongodb": {"bundled": False}}, "MONGODB_URL", False),
    "misspelt top-level key": ({"mongdb": {"url": "mongodb://x"}}, "mongdb", False),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values_fail_at_install(case: str, tmp_path: Path) -> None:
    values, mentioned, _ = BAD_VALUES[case]
    result = helm_template(values, tmp_path)
    assert result.returncode != 0, f"helm accepted {case}"
    assert mentioned in result.stderr, result.stderr


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.mark.parametrize("case", [c for c, (_, _, both) in BAD_VALUES.items() if both])
def test_topology_refuses_what_the_chart_refuses(case: str) -> None:
    """The chart's schema and functions/topology.py guard the same source of truth."""
    with pytest.raises(ValidationError):
        Topology.model_validate(_merged(VALUES, BAD_VALUES[case][0]))


def render_notes(tmp_path: Path, values: dict[str, Any]) -> str:
    """NOTES.txt as `helm install` would print it.

    `helm template` never renders NOTES.txt, so a copy of the chart renders it
    through `tpl` into a ConfigMap.
    """
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "notes").mkdir()
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes" / "NOTES.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data: {notes: {{ tpl (.Files.Get "notes/NOTES.txt") . | quote }}}\n'
    )
    result = helm_template(values, tmp_path, chart=chart, show_only="templates/zz-notes.yaml")
    assert result.returncode == 0, result.stderr
    notes: str = yaml.safe_load(result.stdout)["data"]["notes"]
    return notes


def test_notes_show_a_curl_through_a_port_forward(tmp_path: Path) -> None:
    notes = render_notes(tmp_path, {})
    assert "kubectl -n knative-eventing port-forward svc/broker-ingress 8080:80" in notes
    assert f"curl -i http://localhost:8080/{NAMESPACE}/default" in notes
    assert "Ce-Specversion: 1.0" in notes
    # The generated HS256 key is where the notes say it is.
    assert f"get secret {RELEASE} -o jsonpath='{{.data.JWT_SECRET}}'" in notes


def test_notes_follow_the_broker_class(tmp_path: Path) -> None:
    notes = render_notes(tmp_path, {"broker": {"class": "Kafka"}, "secrets": {"jwtSecret": "k"}})
    assert "port-forward svc/kafka-broker-ingress 8080:80" in notes
    assert "JWT_SECRET" not in notes
