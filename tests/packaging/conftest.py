"""Rendered chart variants, shared by the packaging tests of one session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.packaging.tools import Manifest, render

# The chart passes the key on without reading it.
PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\n(a test key)\n-----END PUBLIC KEY-----\n"

# Each variant flips switches; between them every switch of values.yaml is flipped.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    # Every optional part on, with the bundled databases and the Kafka broker.
    "all-on": {
        "broker": {"class": "Kafka"},
        "eventing": {
            "sinkBinding": True,
            "ceOverrides": {"extensions": {"team": "blue"}},
            "kafka": {"bootstrapServers": "kafka-0.kafka:9092"},
        },
        "networkPolicy": {"enabled": True},
        "metrics": {"podMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
        "imagePullSecrets": [{"name": "registry"}],
        "image": {
            "repository": "registry.example/kshop",
            "tag": "1.2.3",
            "digest": "sha256:" + "ab" * 32,
        },
        "secrets": {"smtpUsername": "shop", "smtpPassword": "s3cret", "existingSecret": "extra"},
        "config": {"SMTP_HOST": "smtp.example", "SMTP_PORT": 587},
        "functions": {
            "users": {"scaling": {"scaleToZeroRetention": "5m"}, "env": {"SIGNUP_BONUS": 5}}
        },
    },
    # Everything external or off: no Broker, no bundled databases, no token key made.
    "external": {
        "eventing": {"createBroker": False, "ceOverrides": {"extensions": {"region": "eu1"}}},
        "mongodb": {"url": "mongodb://shop:pw@mongo.example:27017/?tls=true"},
        "redis": {"url": "rediss://:pw@redis.example:6380/0", "bundled": False},
        "serviceAccount": {"create": False},
        "knativeService": {"clusterLocalWithoutHttp": False},
        "metrics": {"annotations": False},
        "secrets": {"jwtPublicKey": PUBLIC_KEY},
        "config": {"JWT_ALGORITHMS": "ES256"},
        "functions": {"shipping": {"enabled": False}},
    },
}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    return {
        name: render(values, tmp_path_factory.mktemp(name)) for name, values in VARIANTS.items()
    }


@pytest.fixture(scope="session")
def defaults(rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    return rendered["defaults"]
