from __future__ import annotations

from pydantic import Field

from tsunagu.settings import KernelSettings


class GatewaySettings(KernelSettings):
    profiles_url: str = Field(default="http://127.0.0.1:8101", alias="TSUNAGU_PROFILES_URL")
    matching_url: str = Field(default="http://127.0.0.1:8102", alias="TSUNAGU_MATCHING_URL")
    search_url: str = Field(default="http://127.0.0.1:8103", alias="TSUNAGU_SEARCH_URL")
    access_token_minutes: int = Field(default=60, ge=1, le=24 * 60, alias="TSUNAGU_ACCESS_TOKEN_MINUTES")
    # Sign-in attempts allowed per e-mail address (password guessing against one account) and per client
    # address (guessing across accounts; higher, since one office or proxy may sign in many people).
    login_rate_limit: str = Field(default="10/minute", alias="TSUNAGU_LOGIN_RATE_LIMIT")
    login_rate_limit_per_client: str = Field(default="300/minute", alias="TSUNAGU_LOGIN_RATE_LIMIT_PER_CLIENT")
    # The expert CSV import is the one large upload (30,000 rows are about 17 MB).
    import_max_bytes: int = Field(default=64_000_000, ge=1_000, alias="TSUNAGU_IMPORT_MAX_BYTES")
    upstream_timeout_seconds: float = Field(default=120.0, alias="TSUNAGU_UPSTREAM_TIMEOUT")
