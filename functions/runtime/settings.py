"""Every setting comes from the environment, checked once at start."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _csv(value: object) -> object:
    return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    function: str = ""
    host: str = "0.0.0.0"  # Knative routes to the pod's address; kshop dev uses 127.0.0.1
    port: int = Field(default=8080, ge=1, le=65535)
    k_sink: str | None = Field(default=None, pattern=r"^https?://")

    mongodb_url: str = Field(default="mongodb://127.0.0.1:27017/", pattern=r"^mongodb(\+srv)?://")
    mongodb_database: str = Field(default="kshop", pattern=r"^[A-Za-z0-9_-]{1,63}$")
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


@cache
def settings() -> Settings:
    return Settings()


def explain(error: ValidationError) -> str:
    """One line per bad variable, named as the user typed it in the environment."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
    )
