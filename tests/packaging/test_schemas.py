"""Every object the chart renders is valid for the API server that would take it.

Knative kinds are checked against the CRD schemas in ../shared/schemas/knative,
core kinds with kubernetes-validate (strict, Kubernetes 1.33), in every variant.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import kubernetes_validate
import pytest

from tests.packaging.conftest import VARIANTS
from tests.packaging.tools import (
    Manifest,
    knative_services,
    of_kind,
    schema_error,
    shared_dir,
    validator,
)

pytestmark = pytest.mark.packaging

KUBERNETES_VERSION = "1.33"
# Kinds no schema here can check; test_knative.py asserts on each instead.
UNCHECKED = {("monitoring.coreos.com/v1", "PodMonitor")}


@cache
def knative_validators() -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> validator, read from the `const`s each schema pins."""
    validators = {}
    for path in sorted((shared_dir() / "schemas" / "knative").glob("*.json")):
        schema = json.loads(path.read_text())
        props = schema["properties"]
        validators[(props["apiVersion"]["const"], props["kind"]["const"])] = validator(schema)
    return validators


def is_knative(manifest: Manifest) -> bool:
    return bool(manifest["apiVersion"].partition("/")[0].endswith("knative.dev"))


def describe(manifest: Manifest) -> str:
    return f"{manifest['kind']} {manifest['metadata']['name']}"


def knative_errors(manifest: Manifest) -> str | None:
    key = (manifest["apiVersion"], manifest["kind"])
    checker = knative_validators().get(key)
    assert checker, f"no Knative schema for {key}"
    error = schema_error(checker, manifest)
    return error and f"{describe(manifest)} {error}"


def core_errors(manifest: Manifest) -> str | None:
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return f"{describe(manifest)} at {list(error.absolute_path)}: {error.message}"
    return None


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_object_validates(variant: str, rendered: dict[str, list[Manifest]]) -> None:
    checked = [m for m in rendered[variant] if (m["apiVersion"], m["kind"]) not in UNCHECKED]
    errors = [knative_errors(m) if is_knative(m) else core_errors(m) for m in checked]
    assert not any(errors), "\n".join(e for e in errors if e)
    assert checked


def test_the_knative_schemas_catch_a_misspelt_field(defaults: list[Manifest]) -> None:
    service = copy.deepcopy(knative_services(defaults)["users"])
    service["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    error = knative_errors(service)
    assert error is not None
    assert "imagePullPolcy" in error


def test_kubernetes_validate_catches_a_misspelt_field(defaults: list[Manifest]) -> None:
    statefulset = copy.deepcopy(of_kind(defaults, "StatefulSet", "apps")[0])
    statefulset["spec"]["replica"] = 2
    error = core_errors(statefulset)
    assert error is not None
    assert "replica" in error
