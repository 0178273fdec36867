"""Settings read from the environment (pydantic-settings).

Every process reads the same variable names; a service-specific settings class adds its own.
Outside development and test, default secrets are refused at start-up so that a production deployment
cannot run with a secret that is printed in this repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_TOKEN_SECRET = "development-only-secret-change-me-0123456789"

Environment = Literal["development", "test", "production"]


class KernelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    env: Environment = Field(default="development", alias="TSUNAGU_ENV")
    data_dir: Path = Field(default=Path(".tsunagu"), alias="TSUNAGU_DATA_DIR")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    nats_url: str = Field(default="nats://127.0.0.1:4222", alias="NATS_URL")
    token_secret: str = Field(default=DEVELOPMENT_TOKEN_SECRET, alias="TSUNAGU_TOKEN_SECRET")
    log_level: str = Field(default="INFO", alias="TSUNAGU_LOG_LEVEL")
    # How often a consumer may receive one event before it goes to the dead-letter subject.
    max_deliveries: int = Field(default=5, ge=1, le=100, alias="TSUNAGU_MAX_DELIVERIES")
    # Seconds before an unacknowledged event is redelivered.
    ack_wait_seconds: float = Field(default=30.0, gt=0, alias="TSUNAGU_ACK_WAIT_SECONDS")
    # JetStream replicas of each stream: 1 on one machine, 3 on the clustered NATS of deploy/k8s.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5, alias="TSUNAGU_NATS_STREAM_REPLICAS")
    # Largest request body any service accepts (bytes); bigger bodies get 413 before parsing.
    max_body_bytes: int = Field(default=1_000_000, alias="TSUNAGU_MAX_BODY_BYTES")

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> "KernelSettings":
        if self.env == "production":
            if self.token_secret == DEVELOPMENT_TOKEN_SECRET:
                raise ValueError(
                    "TSUNAGU_TOKEN_SECRET に本番用の値を設定してください "
                    "(the development token secret is refused in production)"
                )
            if len(self.token_secret) < 32:
                raise ValueError(
                    "TSUNAGU_TOKEN_SECRET は32文字以上にしてください (token secret must be at least 32 characters)"
                )
        return self

    def database_url_for(self, service: str) -> str:
        """DATABASE_URL if set, else a SQLite file of the service's own in the data directory."""
        if self.database_url:
            return self.database_url
        return sqlite_url(self.data_dir, service)


def sqlite_url(data_dir: Path, service: str) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / f'{service}.sqlite3').resolve()}"
