"""What each switch of the chart does to the rendered objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.runtime.settings import Settings
from tests.packaging.conftest import VARIANTS
from tests.packaging.tools import (
    CHART,
    NAMESPACE,
    RELEASE,
    VALUES,
    Manifest,
    container,
    env,
    knative_services,
    matches,
    named,
    of_kind,
    render,
)

pytestmark = pytest.mark.packaging

AUTOSCALING = "autoscaling.knative.dev/"


def secret_data(manifests: list[Manifest], name: str) -> dict[str, str]:
    data: dict[str, str] = named(manifests, "Secret", name)["stringData"]
    return data


def test_autoscaling_and_sizing_come_from_values(defaults: list[Manifest]) -> None:
    for name, service in knative_services(defaults).items():
        values = VALUES["functions"][name]
        template = service["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        scaling = values["scaling"]
        assert annotations[AUTOSCALING + "min-scale"] == str(scaling["minScale"])
        assert annotations[AUTOSCALING + "max-scale"] == str(scaling["maxScale"])
        assert annotations[AUTOSCALING + "initial-scale"] == str(scaling["initialScale"])
        assert annotations[AUTOSCALING + "target"] == str(scaling["target"])
        # Knative's webhook refuses autoscaling annotations on the Service itself.
        assert not any(
            k.startswith(AUTOSCALING) for k in service["metadata"].get("annotations", {})
        )
        assert template["spec"]["containerConcurrency"] == values["containerConcurrency"]
        assert container(service)["resources"] == values["resources"]


def test_scale_to_zero_is_the_default_and_retention_is_optional(
    tmp_path: Path, rendered: dict[str, list[Manifest]]
) -> None:
    bare = render({"functions": {"extra": {"http": False}}}, tmp_path)
    annotations = knative_services(bare)["extra"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations[AUTOSCALING + "min-scale"] == "0"
    assert AUTOSCALING + "scale-to-zero-pod-retention-period" not in annotations

    users = knative_services(rendered["all-on"])["users"]["spec"]["template"]["metadata"]
    assert users["annotations"][AUTOSCALING + "scale-to-zero-pod-retention-period"] == "5m"


def test_a_new_function_needs_only_a_values_entry(tmp_path: Path) -> None:
    manifests = render(
        {
            "functions": {
                "reviews": {
                    "http": True,
                    "triggers": [
                        {
                            "name": "reviews-orders",
                            "filter": {"attributes": {"type": "kshop.order.completed"}},
                        }
                    ],
                }
            }
        },
        tmp_path,
    )
    service = knative_services(manifests)["reviews"]
    assert env(service)["FUNCTION"] == "reviews"
    trigger = named(manifests, "Trigger", "reviews-orders", "eventing.knative.dev")
    assert trigger["spec"]["subscriber"]["ref"]["name"] == "reviews"


def test_containers_are_locked_down_and_probed(rendered: dict[str, list[Manifest]]) -> None:
    for variant in VARIANTS:
        for service in knative_services(rendered[variant]).values():
            c = container(service)
            security = c["securityContext"]
            assert security["runAsNonRoot"] is True
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}
            assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
            assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
            # Knative fills in the probe port; any other port is refused.
            assert "port" not in c["readinessProbe"]["httpGet"]
            assert c["ports"] == [{"name": "http1", "containerPort": 8080}]
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
            assert service["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
            # Knative reserves these; it sets PORT itself.
            assert not {"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"} & set(env(service))


def test_settings_come_from_the_configmap_and_secrets(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["all-on"]
    config = named(manifests, "ConfigMap", RELEASE)["data"]
    assert config["SMTP_HOST"] == "smtp.example"
    assert config["SMTP_PORT"] == "587"
    # Empty settings are left out, so the runtime's defaults apply.
    assert "JWT_ISSUER" not in config
    secrets = secret_data(manifests, RELEASE)
    assert {"MONGODB_URL", "REDIS_URL", "JWT_SECRET", "SMTP_USERNAME", "SMTP_PASSWORD"} <= set(
        secrets
    )
    assert not set(secrets) & set(config)
    for service in knative_services(manifests).values():
        sources = container(service)["envFrom"]
        assert sources == [
            {"configMapRef": {"name": RELEASE}},
            {"secretRef": {"name": RELEASE}},
            # The user's own Secret comes last, so its keys win.
            {"secretRef": {"name": "extra"}},
        ]
    assert env(knative_services(manifests)["users"])["SIGNUP_BONUS"] == "5"


def test_bundled_databases_share_one_generated_password_each(defaults: list[Manifest]) -> None:
    functions = secret_data(defaults, RELEASE)
    mongo = secret_data(defaults, f"{RELEASE}-mongodb")
    redis = secret_data(defaults, f"{RELEASE}-redis")
    password = mongo["MONGO_INITDB_ROOT_PASSWORD"]
    assert len(password) >= 32
    assert functions["MONGODB_URL"] == (
        f"mongodb://{mongo['MONGO_INITDB_ROOT_USERNAME']}:{password}"
        f"@{RELEASE}-mongodb:27017/?authSource=admin"
    )
    assert functions["REDIS_URL"] == f"redis://:{redis['REDIS_PASSWORD']}@{RELEASE}-redis:6379/0"
    assert len(functions["JWT_SECRET"]) >= 32


@pytest.mark.parametrize("database", ["mongodb", "redis"])
def test_bundled_databases_persist_authenticate_and_probe(
    database: str, defaults: list[Manifest]
) -> None:
    name = f"{RELEASE}-{database}"
    statefulset = named(defaults, "StatefulSet", name, "apps")
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert (
        claim["spec"]["resources"]["requests"]["storage"] == VALUES[database]["persistence"]["size"]
    )
    pod = statefulset["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert {"readinessProbe", "livenessProbe"} <= set(c)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # The password comes from the database's own Secret, never from the manifest.
    refs = [s["secretRef"]["name"] for s in c.get("envFrom", [])] + [
        e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", []) if "valueFrom" in e
    ]
    assert refs and set(refs) == {name}
    service = named(defaults, "Service", name)
    assert matches(
        service["spec"]["selector"], statefulset["spec"]["template"]["metadata"]["labels"]
    )


def test_external_urls_switch_the_bundled_databases_off(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["external"]
    assert not of_kind(manifests, "StatefulSet", "apps")
    secrets = secret_data(manifests, RELEASE)
    assert secrets["MONGODB_URL"] == VARIANTS["external"]["mongodb"]["url"]
    assert secrets["REDIS_URL"] == VARIANTS["external"]["redis"]["url"]
    # With a public key configured no HS256 key is made up.
    assert "JWT_SECRET" not in secrets
    assert secrets["JWT_PUBLIC_KEY"] == VARIANTS["external"]["secrets"]["jwtPublicKey"]
    assert [s["metadata"]["name"] for s in of_kind(manifests, "Secret")] == [RELEASE]


def test_k_sink_is_the_brokers_ingress(rendered: dict[str, list[Manifest]]) -> None:
    for service in knative_services(rendered["defaults"]).values():
        assert env(service)["K_SINK"] == (
            f"http://broker-ingress.knative-eventing.svc.cluster.local/{NAMESPACE}/default"
        )
    assert not of_kind(rendered["defaults"], "SinkBinding", "sources.knative.dev")


def test_kafka_broker_takes_its_own_ingress_and_config(tmp_path: Path) -> None:
    manifests = render({"broker": {"class": "Kafka"}}, tmp_path)
    (broker,) = of_kind(manifests, "Broker", "eventing.knative.dev")
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    assert broker["spec"]["config"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "kafka-broker-config",
        "namespace": "knative-eventing",
    }
    for service in knative_services(manifests).values():
        assert env(service)["K_SINK"].startswith(
            "http://kafka-broker-ingress.knative-eventing.svc.cluster.local/"
        )


def test_kafka_bootstrap_servers_get_a_config_map_in_the_release(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["all-on"]
    (broker,) = of_kind(manifests, "Broker", "eventing.knative.dev")
    ref = broker["spec"]["config"]
    assert ref["namespace"] == NAMESPACE
    config = named(manifests, "ConfigMap", ref["name"])["data"]
    assert config["bootstrap.servers"] == "kafka-0.kafka:9092"
    assert int(config["default.topic.replication.factor"]) >= 1


def test_a_sink_binding_replaces_the_k_sink_variable(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["all-on"]
    (binding,) = of_kind(manifests, "SinkBinding", "sources.knative.dev")
    assert binding["spec"]["sink"]["ref"] == {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "name": "default",
    }
    subject = binding["spec"]["subject"]
    assert (subject["apiVersion"], subject["kind"]) == ("serving.knative.dev/v1", "Service")
    services = knative_services(manifests)
    for service in services.values():
        assert "K_SINK" not in env(service)
        assert matches(subject["selector"]["matchLabels"], service["metadata"]["labels"])
    assert binding["spec"]["ceOverrides"] == {"extensions": {"team": "blue"}}


def test_without_a_sink_binding_the_overrides_are_what_one_would_inject(
    rendered: dict[str, list[Manifest]],
) -> None:
    for service in knative_services(rendered["external"]).values():
        variables = env(service)
        overrides = Settings(k_ce_overrides=variables["K_CE_OVERRIDES"]).k_ce_overrides
        assert overrides.extensions == {"region": "eu1"}
    for service in knative_services(rendered["defaults"]).values():
        assert "K_CE_OVERRIDES" not in env(service)  # none set: the function adds none


def test_event_only_functions_are_cluster_local(rendered: dict[str, list[Manifest]]) -> None:
    visibility = "networking.knative.dev/visibility"
    for name, service in knative_services(rendered["defaults"]).items():
        local = service["metadata"]["labels"].get(visibility) == "cluster-local"
        assert local == (not VALUES["functions"][name]["http"]), name
    for service in knative_services(rendered["external"]).values():
        assert visibility not in service["metadata"]["labels"]


def test_no_broker_is_made_when_one_is_managed_elsewhere(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["external"]
    assert not of_kind(manifests, "Broker", "eventing.knative.dev")
    assert of_kind(manifests, "Trigger", "eventing.knative.dev")
    assert "shipping" not in knative_services(manifests)
    assert all(
        t["spec"]["subscriber"]["ref"]["name"] != "shipping"
        for t in of_kind(manifests, "Trigger", "eventing.knative.dev")
    )


def test_network_policies_admit_only_knative_and_the_functions(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["all-on"]
    assert not of_kind(rendered["defaults"], "NetworkPolicy", "networking.k8s.io")
    policies = {
        p["metadata"]["name"]: p["spec"]
        for p in of_kind(manifests, "NetworkPolicy", "networking.k8s.io")
    }
    pod_labels = [
        s["spec"]["template"]["metadata"]["labels"] for s in knative_services(manifests).values()
    ]

    functions = policies[f"{RELEASE}-functions"]
    assert all(matches(functions["podSelector"]["matchLabels"], labels) for labels in pod_labels)
    (rule,) = functions["ingress"]
    (source,) = rule["from"]
    (expression,) = source["namespaceSelector"]["matchExpressions"]
    assert expression["key"] == "kubernetes.io/metadata.name"
    assert set(expression["values"]) == {"knative-serving", "kourier-system", "knative-eventing"}

    for database in ("mongodb", "redis"):
        policy = policies[f"{RELEASE}-{database}"]
        pod = named(manifests, "StatefulSet", f"{RELEASE}-{database}", "apps")["spec"]["template"]
        assert matches(policy["podSelector"]["matchLabels"], pod["metadata"]["labels"])
        (rule,) = policy["ingress"]
        (source,) = rule["from"]
        allowed = source["podSelector"]["matchLabels"]
        assert all(matches(allowed, labels) for labels in pod_labels)
        assert not matches(allowed, pod["metadata"]["labels"])


def test_metrics_are_scraped_from_the_container_not_queue_proxy(
    rendered: dict[str, list[Manifest]],
) -> None:
    for service in knative_services(rendered["defaults"]).values():
        annotations = service["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "8080"
        assert annotations["prometheus.io/path"] == "/metrics"
    for service in knative_services(rendered["external"]).values():
        assert "prometheus.io/scrape" not in service["spec"]["template"]["metadata"]["annotations"]

    manifests = rendered["all-on"]
    (monitor,) = [m for m in manifests if m["kind"] == "PodMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    # Knative renames the user container's port to "user-port" on the pod.
    assert endpoint == {"port": "user-port", "path": "/metrics", "interval": "30s"}
    for service in knative_services(manifests).values():
        labels = service["spec"]["template"]["metadata"]["labels"]
        assert matches(monitor["spec"]["selector"]["matchLabels"], labels)


def test_image_reference_and_pull_secrets(rendered: dict[str, list[Manifest]]) -> None:
    digest = VARIANTS["all-on"]["image"]["digest"]
    for service in knative_services(rendered["all-on"]).values():
        assert container(service)["image"] == f"registry.example/kshop:1.2.3@{digest}"
        assert service["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for service in knative_services(rendered["defaults"]).values():
        assert container(service)["image"] == f"kshop:{chart['appVersion']}"


def test_service_account_has_no_token(rendered: dict[str, list[Manifest]]) -> None:
    (account,) = of_kind(rendered["defaults"], "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    for service in knative_services(rendered["defaults"]).values():
        assert (
            service["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
        )
    assert not of_kind(rendered["external"], "ServiceAccount")
    for service in knative_services(rendered["external"]).values():
        assert service["spec"]["template"]["spec"]["serviceAccountName"] == "default"


def test_changed_settings_roll_a_new_revision(tmp_path: Path, defaults: list[Manifest]) -> None:
    def checksum(manifests: list[Manifest]) -> Any:
        return knative_services(manifests)["users"]["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]

    fixed = {
        "secrets": {"jwtSecret": "j"},
        "mongodb": {"auth": {"password": "m"}},
        "redis": {"auth": {"password": "r"}},
    }
    before = render(fixed, tmp_path)
    assert checksum(render(fixed, tmp_path)) == checksum(before)
    after = render({**fixed, "config": {"LOG_LEVEL": "DEBUG"}}, tmp_path)
    assert checksum(after) != checksum(before)
