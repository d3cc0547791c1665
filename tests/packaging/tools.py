"""Paths, tools and chart rendering shared by the packaging tests.

Kubernetes cannot run on the test machines, so the chart is checked by
rendering it with helm and validating what comes out, and the image by
building and running it with podman.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

# jsonschema ships no type hints; this is the one place the tests use it.
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

from functions.dev.services import tools_dir

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kshop"
RELEASE = "kshop"
# Not "default", so a test can tell the release namespace from a hard-coded one.
NAMESPACE = "shop"
# The chart's own values.yaml: the defaults every test renders against.
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())

Manifest = dict[str, Any]


def missing(what: str) -> NoReturn:
    """The one way a packaging test reports a missing tool: it fails and says how to fix it."""
    pytest.fail(f"{what} is missing: run `scripts/bootstrap test`")


def shared_dir() -> Path:
    """../shared beside the repository (CI clones elsewhere and sets KSHOP_SHARED)."""
    found = Path(os.environ.get("KSHOP_SHARED") or REPO.parent / "shared")
    if not found.is_dir():
        missing(f"the shared schemas directory {found} (set KSHOP_SHARED)")
    return found


def helm() -> Path:
    path = tools_dir() / "helm"
    if not os.access(path, os.X_OK):
        missing(f"helm ({path})")
    return path


def podman() -> str:
    found = shutil.which("podman")
    if not found:
        missing("podman")
    return found


def podman_env() -> dict[str, str]:
    """podman with the settings these sandboxed machines need (runc, ulimits)."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(REPO / "scripts" / "containers.conf"))
    return env


def run(args: Sequence[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)


def helm_template(
    values: Mapping[str, Any] | None = None,
    tmp: Path | None = None,
    *,
    chart: Path = CHART,
    show_only: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart, with `values` layered over the defaults."""
    args: list[str | Path] = [helm(), "template", RELEASE, chart, "--namespace", NAMESPACE]
    if values:
        assert tmp is not None, "values need a directory to be written to"
        file = tmp / "values.yaml"
        file.write_text(yaml.safe_dump(dict(values)))
        args += ["--values", file]
    if show_only:
        args += ["--show-only", show_only]
    return run(args)


def render(values: Mapping[str, Any] | None = None, tmp: Path | None = None) -> list[Manifest]:
    result = helm_template(values, tmp)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(manifests: Iterable[Manifest], kind: str, api_group: str = "") -> list[Manifest]:
    """Objects of one kind; api_group tells a Knative Service from a core one."""
    return [
        m
        for m in manifests
        if m["kind"] == kind and m["apiVersion"].rpartition("/")[0] == api_group
    ]


def named(manifests: Iterable[Manifest], kind: str, name: str, api_group: str = "") -> Manifest:
    found = [m for m in of_kind(manifests, kind, api_group) if m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def knative_services(manifests: Iterable[Manifest]) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in of_kind(manifests, "Service", "serving.knative.dev")}


def container(service: Manifest) -> Manifest:
    containers: list[Manifest] = service["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env(service: Manifest) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(service).get("env", [])}


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def validator(schema: Mapping[str, Any]) -> Any:
    """A draft-07 validator, the dialect of the Knative and skaffold schemas."""
    return Draft7Validator(schema)


def schema_error(checker: Any, instance: Any) -> str | None:
    """The most relevant error of `checker` (a `validator`) on instance, or None.

    Knative's and skaffold's schemas nest anyOf, where the top error only says
    "not valid under any of the given schemas"; descend to the field at fault.
    """
    error = best_match(checker.iter_errors(instance))
    if error is None:
        return None
    while error.context:
        error = best_match(error.context)
    return f"at {list(error.absolute_path)}: {error.message}"
