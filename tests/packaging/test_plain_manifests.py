"""k8s/ is the chart rendered with default values, and its kustomization lists all of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.packaging.tools import REPO, helm, run

pytestmark = pytest.mark.packaging

K8S = REPO / "k8s"


def test_k8s_is_in_sync_with_the_chart(tmp_path: Path) -> None:
    helm()  # fails with the bootstrap hint when helm is missing
    result = run([REPO / "scripts" / "render-k8s", tmp_path])
    assert result.returncode == 0, result.stderr
    # Rendering twice the same way gives the same bytes: nothing in k8s/ is random.
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.yaml")}
    committed = {p.name: p.read_text() for p in K8S.glob("*.yaml")}
    assert sorted(committed) == sorted(fresh), "files differ: run scripts/render-k8s"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"{stale} differ from the chart: run scripts/render-k8s"


def test_the_kustomization_applies_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    manifests = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == manifests
