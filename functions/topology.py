"""The event topology: which function exists, what feeds it, how it scales.

It lives in the Helm chart's values (`charts/kshop/values.yaml`: `broker`,
`functions`, `pingSources`, `eventing.ceOverrides`), so the chart, the plain
manifests and the local dev broker all read one description and cannot drift
apart.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from functions.runtime.settings import CeOverrides

DEFAULT_VALUES = Path(__file__).resolve().parent.parent / "charts" / "kshop" / "values.yaml"
_DIALECTS = frozenset({"exact", "prefix", "suffix", "all", "any", "not", "cesql"})
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Delivery(_Model):
    """Knative's delivery spec (eventing duck v1), with durations in ISO 8601."""

    retry: int | None = Field(default=None, ge=0)
    backoff_policy: Literal["linear", "exponential"] | None = Field(
        default=None, alias="backoffPolicy"
    )
    backoff_delay: str | None = Field(default=None, alias="backoffDelay")
    timeout: str | None = None
    format: Literal["json", "binary"] | None = None
    dead_letter_function: str | None = Field(default=None, alias="deadLetterFunction")


class Broker(_Model):
    name: str = "default"
    class_: Literal["MTChannelBasedBroker", "Kafka"] = Field(
        default="MTChannelBasedBroker", alias="class"
    )
    delivery: Delivery | None = None


class AttributesFilter(_Model):
    attributes: dict[str, str] = {}

    @field_validator("attributes")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _ATTRIBUTE_NAME.match(name):
                raise ValueError(f"filter attribute {name!r} must match {_ATTRIBUTE_NAME.pattern}")
        return value


def _check_filter(entry: Any, where: str) -> None:
    """Knative's webhook allows one dialect per entry; mirror it at load time."""
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ValueError(f"{where}: each filter needs exactly one dialect, got {entry!r}")
    ((dialect, body),) = entry.items()
    if dialect not in _DIALECTS:
        raise ValueError(f"{where}: unknown filter dialect {dialect!r}")
    if dialect in ("all", "any"):
        if not isinstance(body, list):
            raise ValueError(f"{where}.{dialect}: must be a list of filters")
        for i, child in enumerate(body):
            _check_filter(child, f"{where}.{dialect}[{i}]")
    elif dialect == "not":
        _check_filter(body, f"{where}.not")
    elif dialect == "cesql":
        if not isinstance(body, str):
            raise ValueError(f"{where}.cesql: must be a string")
    elif not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
        raise ValueError(f"{where}.{dialect}: must map attribute names to strings")


class Trigger(_Model):
    name: str
    filter: AttributesFilter | None = None
    filters: list[dict[str, Any]] = []
    delivery: Delivery | None = None

    @field_validator("filters")
    @classmethod
    def _dialects(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, entry in enumerate(value):
            _check_filter(entry, f"filters[{i}]")
        return value


class Scaling(_Model):
    min_scale: int = Field(default=0, ge=0, alias="minScale")
    max_scale: int = Field(default=0, ge=0, alias="maxScale")
    initial_scale: int = Field(default=1, ge=0, alias="initialScale")
    target: float | None = Field(default=None, ge=0.01)
    scale_to_zero_retention: str | None = Field(default=None, alias="scaleToZeroRetention")


class Function(_Model):
    name: str = ""
    http: bool = False
    enabled: bool = True
    scaling: Scaling = Scaling()
    container_concurrency: int = Field(default=0, ge=0, le=1000, alias="containerConcurrency")
    resources: dict[str, Any] = {}
    triggers: list[Trigger] = []
    env: dict[str, str] = {}


class PingSource(_Model):
    name: str
    schedule: str
    timezone: str | None = None
    content_type: str | None = Field(default=None, alias="contentType")
    data: str | None = None
    sink: str


class Eventing(BaseModel):
    # The rest of `eventing` (the broker's ingress, Kafka, the SinkBinding) is the cluster's.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    ce_overrides: CeOverrides = Field(default=CeOverrides(), alias="ceOverrides")


class Topology(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    broker: Broker = Broker()
    eventing: Eventing = Eventing()
    functions: dict[str, Function]
    ping_sources: list[PingSource] = Field(default=[], alias="pingSources")

    @model_validator(mode="after")
    def _references(self) -> Topology:
        deliveries = [self.broker.delivery] + [
            t.delivery for f in self.functions.values() for t in f.triggers
        ]
        references = [p.sink for p in self.ping_sources] + [
            d.dead_letter_function for d in deliveries if d and d.dead_letter_function
        ]
        for ref in references:
            if ref not in self.functions:
                raise ValueError(f"{ref!r} is referenced but is not a function")
        triggers = [t.name for f in self.functions.values() for t in f.triggers]
        if len(triggers) != len(set(triggers)):
            raise ValueError("trigger names must be unique")
        return self

    def enabled(self) -> dict[str, Function]:
        return {n: f.model_copy(update={"name": n}) for n, f in self.functions.items() if f.enabled}


@cache
def load(path: str | None = None) -> Topology:
    """Read the topology from the chart's values (or $KSHOP_TOPOLOGY)."""
    import yaml  # only the dev tools and tests need it

    source = Path(path or os.environ.get("KSHOP_TOPOLOGY") or DEFAULT_VALUES)
    with source.open() as f:
        return Topology.model_validate(yaml.safe_load(f))
