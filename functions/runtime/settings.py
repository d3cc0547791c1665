"""Every setting comes from the environment, checked once at start."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _csv(value: object) -> object:
    return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value


class CeOverrides(BaseModel):
    """A SinkBinding's `spec.ceOverrides`: extensions set on every event sent to K_SINK."""

    # Fields a later Knative may add must not stop a function from starting.
    model_config = ConfigDict(extra="ignore", frozen=True, regex_engine="python-re")

    # Knative's webhook allows lower-case letters and digits in a name, and strings only.
    extensions: dict[Annotated[str, Field(pattern=r"^[a-z0-9]+\Z")], str] = {}

    @field_validator("extensions")
    @classmethod
    def _not_an_attribute(cls, extensions: dict[str, str]) -> dict[str, str]:
        from functions.runtime.codec import CONTEXT_ATTRIBUTES  # the SDK, only when it is set

        # The CloudEvents SDKs refuse an extension that would overwrite an attribute.
        if clash := sorted(CONTEXT_ATTRIBUTES.intersection(extensions)):
            raise ValueError(f"{', '.join(clash)}: a context attribute, not an extension")
        return extensions


def _json_or_absent(value: object) -> object:
    # SinkBinding sets K_CE_OVERRIDES to "" when the binding has no overrides.
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value) if value.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f'must be JSON, such as {{"extensions": {{...}}}}: {exc}') from None


def _pem_or_absent(value: str | None) -> str | None:
    """PEM-encoded CA certificates, checked at start; "" is none."""
    if value is None or not value.strip():
        return None
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=value)
    except ssl.SSLError:
        raise ValueError("must be PEM-encoded CA certificates") from None
    return value


class Settings(BaseSettings):
    # Python's `re` for the patterns (so `\Z`, not `$`, which lets a final newline
    # through): they are checked once, at start, and pydantic's default engine, Rust's
    # regex, would hold ~0.5 MiB of compiled automata for them (docs/bench.md).
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", regex_engine="python-re"
    )

    function: str = ""
    host: str = "0.0.0.0"  # Knative routes to the pod's address; kshop dev uses 127.0.0.1
    port: int = Field(default=8080, ge=1, le=65535)
    # Knative Serving's names for the Service and the revision this process runs.
    k_service: str | None = None
    k_revision: str | None = None
    k_sink: str | None = Field(default=None, pattern=r"^https?://")
    # A SinkBinding injects these two with K_SINK: the CA of a broker that serves
    # TLS (trusted beside the usual roots), and extensions for every event sent.
    k_ca_certs: str | None = None
    k_ce_overrides: Annotated[CeOverrides, NoDecode] = CeOverrides()
    # Where a SinkBinding mounts its OIDC token for the sink when Eventing's
    # authentication-oidc is on (a Secret it renews); absent otherwise.
    oidc_token_file: Path = Path("/oidc/token")

    mongodb_url: str = Field(default="mongodb://127.0.0.1:27017/", pattern=r"^mongodb(\+srv)?://")
    mongodb_database: str = Field(default="kshop", pattern=r"^[A-Za-z0-9_-]{1,63}\Z")
    # 1 serialises this process's MongoDB operations: FerretDB 1.x does not make a
    # guarded update atomic across connections (FerretDB/FerretDB#3040), real MongoDB does.
    mongodb_max_pool_size: int = Field(default=100, ge=1)
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", pattern=r"^(rediss?|unix)://")
    redis_prefix: str = "kshop"
    redis_max_connections: int = Field(default=64, ge=1)

    idempotency_ttl: int = Field(default=3600, ge=1, description="seconds a result is kept")
    idempotency_lock_ttl: int = Field(
        default=60, ge=1, description="seconds a lock outlives a crash"
    )

    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_private_key: str | None = None
    jwt_jwks_url: str | None = Field(default=None, pattern=r"^https?://")
    jwt_algorithms: Annotated[list[str], NoDecode] = ["HS256"]
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway: int = Field(default=0, ge=0)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "kshop <no-reply@kshop.example>"
    smtp_timeout: float = Field(default=10.0, gt=0)
    smtp_tls: Literal["none", "starttls", "tls"] = "none"

    publish_timeout: float = Field(default=5.0, gt=0)
    publish_retries: int = Field(default=3, ge=0)
    outbox_interval: float = Field(
        default=2.0, gt=0, description="seconds between outbox sweeps, and an entry's age to sweep"
    )

    order_deadline_seconds: float = Field(
        default=900.0, gt=0, description="seconds an order may take to reach payment"
    )
    inventory_restock_concurrency: int = Field(default=8, ge=1, le=100)
    payment_gateway: Literal["simulated"] = "simulated"
    payment_decline_above_cents: int = Field(
        default=1_000_000, ge=0, description="the simulated gateway declines larger charges"
    )
    payment_gateway_latency: float = Field(
        default=0.0, ge=0, description="seconds the simulated gateway takes per charge"
    )
    payment_gateway_failure_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of simulated gateway calls that fail"
    )
    shipping_eta_days: int = Field(default=3, ge=0, le=60)

    max_body_bytes: int = Field(default=256 * 1024, ge=1)
    cors_origins: Annotated[list[str], NoDecode] = []
    shutdown_delay: float = Field(default=0.0, ge=0, description="seconds unready before draining")
    readiness_cache: float = Field(default=1.0, ge=0)

    otel_exporter_otlp_endpoint: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Lists come as comma-separated values, the way people write them in env files.
    _lists = field_validator("jwt_algorithms", "cors_origins", mode="before")(_csv)
    _overrides = field_validator("k_ce_overrides", mode="before")(_json_or_absent)
    _ca_certs = field_validator("k_ca_certs")(_pem_or_absent)


@cache
def settings() -> Settings:
    return Settings()


def explain(error: ValidationError) -> str:
    """One line per bad variable, named as the user typed it in the environment."""
    return "; ".join(_line(e["loc"], e["msg"]) for e in error.errors())


def _line(location: tuple[int | str, ...], message: str) -> str:
    variable, *inside = location  # inside a JSON value, names keep their case
    where = ".".join(str(part) for part in inside)
    return f"{str(variable).upper()}: {f'{where}: ' if where else ''}{message}"
