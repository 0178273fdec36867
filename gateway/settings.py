from __future__ import annotations

from pydantic import Field

from tsunagu.settings import KernelSettings


class GatewaySettings(KernelSettings):
    profiles_url: str = Field(default="http://127.0.0.1:8101", alias="TSUNAGU_PROFILES_URL")
    matching_url: str = Field(default="http://127.0.0.1:8102", alias="TSUNAGU_MATCHING_URL")
    search_url: str = Field(default="http://127.0.0.1:8103", alias="TSUNAGU_SEARCH_URL")
    access_token_minutes: int = Field(default=60, ge=1, le=24 * 60, alias="TSUNAGU_ACCESS_TOKEN_MINUTES")
    # Sign-in attempts allowed per e-mail address and per client address.
    login_rate_limit: str = Field(default="10/minute", alias="TSUNAGU_LOGIN_RATE_LIMIT")
    upstream_timeout_seconds: float = Field(default=30.0, alias="TSUNAGU_UPSTREAM_TIMEOUT")
