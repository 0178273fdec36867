"""Settings read from the environment (pydantic-settings).

Every process reads the same variable names; a service-specific settings class adds its own.
Outside development and test, default secrets are refused at start-up so that a production deployment
cannot run with a secret that is printed in this repository. The services hold no secret to verify who
calls them: they fetch the gateway's public keys (``TSUNAGU_GATEWAY_JWKS_URL``, see tsunagu/auth.py); the
gateway's own secrets (its signing keys, the client-token secret) are in gateway/settings.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Refused in production by the gateway's settings; development and tests only.
DEVELOPMENT_TOKEN_SECRET = "development-only-secret-change-me-0123456789"  # noqa: S105

Environment = Literal["development", "test", "production"]


class KernelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    env: Environment = Field(default="development", alias="TSUNAGU_ENV")
    data_dir: Path = Field(default=Path(".tsunagu"), alias="TSUNAGU_DATA_DIR")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    nats_url: str = Field(default="nats://127.0.0.1:4222", alias="NATS_URL")
    # Where the gateway publishes the public keys that verify its per-call tokens; or the key set itself
    # (a JSON JWK set, public keys only: for a deployment that distributes it as configuration, and tests).
    gateway_jwks_url: str = Field(
        default="http://127.0.0.1:8000/.well-known/jwks.json", alias="TSUNAGU_GATEWAY_JWKS_URL"
    )
    gateway_jwks: str = Field(default="", alias="TSUNAGU_GATEWAY_JWKS")
    log_level: str = Field(default="INFO", alias="TSUNAGU_LOG_LEVEL")
    # How often a consumer may receive one event before it goes to the dead-letter subject.
    max_deliveries: int = Field(default=5, ge=1, le=100, alias="TSUNAGU_MAX_DELIVERIES")
    # Seconds before an unacknowledged event is redelivered.
    ack_wait_seconds: float = Field(default=30.0, gt=0, alias="TSUNAGU_ACK_WAIT_SECONDS")
    # JetStream replicas of each stream: 1 on one machine, 3 on the clustered NATS of deploy/k8s.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5, alias="TSUNAGU_NATS_STREAM_REPLICAS")
    # Largest request body any service accepts (bytes); bigger bodies get 413 before parsing.
    max_body_bytes: int = Field(default=1_000_000, alias="TSUNAGU_MAX_BODY_BYTES")
    # Prometheus /metrics on a port of its own (tsunagu/metrics.py); unset: no metrics server. Kubernetes: 9100.
    metrics_port: int | None = Field(default=None, ge=1, le=65535, alias="TSUNAGU_METRICS_PORT")
    metrics_host: str = Field(default="0.0.0.0", alias="TSUNAGU_METRICS_HOST")  # noqa: S104 - the pod's port
    # How often the gauges read from the database and JetStream (outbox backlog, consumer lag) are refreshed.
    metrics_sample_seconds: float = Field(default=5.0, gt=0, alias="TSUNAGU_METRICS_SAMPLE_SECONDS")
    # Days a consumer remembers which events it applied (processed_events); why days are safe: outbox.prune_processed.
    processed_events_retention_days: float = Field(default=7.0, ge=1, alias="TSUNAGU_PROCESSED_EVENTS_RETENTION_DAYS")

    def database_url_for(self, service: str) -> str:
        """DATABASE_URL if set, else a SQLite file of the service's own in the data directory."""
        if self.database_url:
            return self.database_url
        return sqlite_url(self.data_dir, service)


def sqlite_url(data_dir: Path, service: str) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / f'{service}.sqlite3').resolve()}"
