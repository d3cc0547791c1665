"""skaffold.yaml is valid for skaffold v4beta14 and points at the real chart, image and ingress."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from tests.packaging.tools import CHART, REPO, VALUES, schema_error, shared_dir, validator

pytestmark = pytest.mark.packaging

SKAFFOLD: dict[str, Any] = yaml.safe_load((REPO / "skaffold.yaml").read_text())


def skaffold_error(config: dict[str, Any]) -> str | None:
    schema = json.loads((shared_dir() / "schemas" / "skaffold" / "v4beta14.json").read_text())
    return schema_error(validator(schema), config)


def test_skaffold_yaml_validates() -> None:
    assert SKAFFOLD["apiVersion"] == "skaffold/v4beta14"
    error = skaffold_error(SKAFFOLD)
    assert error is None, error


def test_the_validation_names_a_misspelt_field() -> None:
    broken = copy.deepcopy(SKAFFOLD)
    broken["build"]["artifacts"][0]["contxt"] = "."
    error = skaffold_error(broken)
    assert error is not None
    assert "'build', 'artifacts', 0" in error and "contxt" in error


def test_it_builds_the_dockerfile_and_deploys_the_chart() -> None:
    (artifact,) = SKAFFOLD["build"]["artifacts"]
    assert (REPO / artifact["context"] / artifact["docker"]["dockerfile"]).is_file()
    assert "BASE_IMAGE" in artifact["docker"]["buildArgs"]
    (release,) = SKAFFOLD["deploy"]["helm"]["releases"]
    assert (REPO / release["chartPath"]).resolve() == CHART
    # Every image value skaffold sets exists in the chart.
    for key in release["setValueTemplates"]:
        section, _, field = key.partition(".")
        assert field in VALUES[section], key


@pytest.mark.parametrize("profile", ["kind", "minikube"])
def test_local_cluster_profiles_load_images_without_pushing(profile: str) -> None:
    (found,) = [p for p in SKAFFOLD["profiles"] if p["name"] == profile]
    assert found["build"]["local"]["push"] is False
    assert found["activation"], "profiles switch on from the kube context"


def test_port_forwards_reach_the_broker_ingress_of_each_class() -> None:
    forwards = SKAFFOLD["portForward"]
    ingress = {(f["resourceName"], f["namespace"]) for f in forwards}
    host = VALUES["eventing"]["ingress"]["MTChannelBasedBroker"].split("//")[1]
    name, namespace, *_ = host.split(".")
    assert (name, namespace) in ingress

    (kafka,) = [p for p in SKAFFOLD["profiles"] if p["name"] == "kafka"]
    patches = {p["path"]: p["value"] for p in kafka["patches"]}
    assert patches["/deploy/helm/releases/0/setValues"] == {"broker.class": "Kafka"}
    kafka_host = VALUES["eventing"]["ingress"]["Kafka"].split("//")[1]
    assert patches["/portForward/0/resourceName"] == kafka_host.split(".")[0]
    assert forwards[0]["resourceName"] == name
