"""What production refuses: the gateway's default or short token secret, and starting without signing keys
(tsunagu/settings.py, gateway/settings.py). The services hold no secret at all."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from tsunagu.auth import SigningKeys
from tsunagu.settings import DEVELOPMENT_TOKEN_SECRET, KernelSettings

KEYS = json.dumps(SigningKeys.generate().private_jwks())
# Production also refuses a memory:// limiter store (tests/gateway/test_limit_store.py); these tests name a shared one.
SHARED_LIMIT_STORE = "redis://valkey:6379/0"


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGU_ENV", "production")
    monkeypatch.setenv("TSUNAGU_RATE_LIMIT_STORAGE", SHARED_LIMIT_STORE)  # production's shared limiter store
    monkeypatch.setenv("TSUNAGU_SIGNING_KEYS", KEYS)
    monkeypatch.setenv("TSUNAGU_TOKEN_SECRET", DEVELOPMENT_TOKEN_SECRET)
    with pytest.raises(ValidationError, match="TSUNAGU_TOKEN_SECRET"):
        GatewaySettings()
    monkeypatch.setenv("TSUNAGU_TOKEN_SECRET", "short")
    with pytest.raises(ValidationError):
        GatewaySettings()
    monkeypatch.setenv("TSUNAGU_TOKEN_SECRET", "a-real-production-secret-with-enough-length")
    assert GatewaySettings().env == "production"


def test_production_refuses_to_start_without_signing_keys(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("TSUNAGU_ENV", "production")
    monkeypatch.setenv("TSUNAGU_RATE_LIMIT_STORAGE", SHARED_LIMIT_STORE)
    monkeypatch.setenv("TSUNAGU_TOKEN_SECRET", "a-real-production-secret-with-enough-length")
    with pytest.raises(ValidationError, match="TSUNAGU_SIGNING_KEYS"):
        GatewaySettings()
    monkeypatch.setenv("TSUNAGU_SIGNING_KEYS_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(ValidationError, match="TSUNAGU_SIGNING_KEYS"):
        GatewaySettings()
    (tmp_path / "keys.json").write_text(KEYS)
    monkeypatch.setenv("TSUNAGU_SIGNING_KEYS_FILE", str(tmp_path / "keys.json"))
    assert GatewaySettings().signing_keys_file == tmp_path / "keys.json"


def test_a_service_holds_no_secret() -> None:
    assert "token_secret" not in KernelSettings.model_fields
    assert not any("secret" in name or "signing" in name for name in KernelSettings.model_fields)
