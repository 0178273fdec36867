"""Settings of the gateway (environment variables, on top of the kernel's) and its constants: a leaf
module, so that every other gateway module may import it without a circle."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, Field, model_validator

from tsunagu.settings import DEVELOPMENT_TOKEN_SECRET, KernelSettings

SERVICE_NAME = "gateway"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# The audience of the tokens clients hold (bearer or cookie); each service has its own audience.
API_AUDIENCE = "tsunagu-api"
# The web UI signs in with the same tokens as HttpOnly cookies: the access token under SESSION_COOKIE (sent
# on every path) and the refresh token under REFRESH_COOKIE (sent only to /api/v1/auth, where it is used).
SESSION_COOKIE = "tsunagu_session"
REFRESH_COOKIE = "tsunagu_refresh"
REFRESH_COOKIE_PATH = "/api/v1/auth"
# The OIDC sign-in's state binds the browser that started it (login CSRF); sent only to the callback paths.
OIDC_STATE_COOKIE = "tsunagu_oidc_state"
OIDC_COOKIE_PATH = "/auth/oidc"
# Limit stores that count inside one process (``limits`` storage schemes): refused in production.
PROCESS_LOCAL_LIMIT_STORES = ("memory://", "async+memory://")
# The limiter's keys in a shared store start with this, so one Redis/Valkey may serve other uses too.
LIMIT_KEY_PREFIX = "tsunagu-limits"


class OidcProvider(BaseModel):
    """One configured OpenID Connect provider. ``role`` is what an account created at its first sign-in gets
    (the admin maps it per provider; never broker or admin by default: those need prefectures or trust)."""

    issuer: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: str = ""
    role: Literal["sme", "expert", "broker", "hub", "admin"] = "sme"
    # A broker's or hub's prefectures for accounts this provider creates (e.g. a prefecture's own IdP).
    prefectures: list[str] = Field(default_factory=list)
    label: str = ""  # what the sign-in button says, e.g. 「商工会議所IDでログイン」
    scope: str = "openid email profile"


def _refuse_default_token_secret(secret: str) -> None:
    if secret == DEVELOPMENT_TOKEN_SECRET:
        raise ValueError(
            "TSUNAGU_TOKEN_SECRET に本番用の値を設定してください (the development token secret is refused in production)"
        )
    if len(secret) < 32:
        raise ValueError(
            "TSUNAGU_TOKEN_SECRET は32文字以上にしてください (token secret must be at least 32 characters)"
        )


def _refuse_process_local_limit_store(storage: str) -> None:
    if storage.strip().lower().startswith(PROCESS_LOCAL_LIMIT_STORES):
        raise ValueError(
            "TSUNAGU_RATE_LIMIT_STORAGE に共有ストア（例: redis://valkey:6379/0）を設定してください。"
            "memory:// はゲートウェイのプロセスごとに数えるため、複数のレプリカではログイン試行の制限が効きません "
            "(production refuses a memory:// rate-limit store: each gateway replica would count alone; "
            "name a shared store such as redis://valkey:6379/0)"
        )


class SessionSettings(KernelSettings):
    """How long sign-ins live and how long the gateway keeps their records: all that the pruning job
    (``tsunagu gateway prune``, gateway/service.py ``prune``) reads, so that it runs without the gateway's
    secrets (GatewaySettings refuses to start without them in production, and a job should not hold them)."""

    session_idle_days: int = Field(default=14, ge=1, le=365, alias="TSUNAGU_SESSION_IDLE_DAYS")
    session_max_days: int = Field(default=90, ge=1, le=3650, alias="TSUNAGU_SESSION_MAX_DAYS")
    # An ended session (logout, block, idle, too old) and its refresh tokens are kept this many days after it
    # ended, so a recent sign-in can still be looked into beside the audit log (which device, which address),
    # then deleted: the table holds live sessions and a month of ended ones, not every sign-in ever made.
    session_retention_days: int = Field(default=30, ge=1, le=3650, alias="TSUNAGU_SESSION_RETENTION_DAYS")
    # The audit log (sign-ins, failed ones, role changes, blocks, verifications) is kept 400 days: a full year
    # to compare with the year before, through the yearly review of the past fiscal year (held in the months
    # after it closes), with a margin; long enough for the one-year log retention that security standards
    # commonly ask of authentication logs, and no longer, since each entry names a person and an address.
    audit_retention_days: int = Field(default=400, ge=30, le=3650, alias="TSUNAGU_AUDIT_RETENTION_DAYS")


class GatewaySettings(SessionSettings):
    # The secret of the tokens clients hold (the gateway alone signs and verifies them) and of CSRF tokens.
    token_secret: str = Field(default=DEVELOPMENT_TOKEN_SECRET, alias="TSUNAGU_TOKEN_SECRET")
    # The private Ed25519 keys that sign the per-call tokens to the services (a JWK set, newest key first;
    # see gateway/keys.py): inline (e.g. from a Kubernetes Secret) or a file. Development and tests: a key
    # set generated once under the data directory. Production refuses to start without one of the two.
    signing_keys_json: str = Field(default="", alias="TSUNAGU_SIGNING_KEYS")
    signing_keys_file: Path | None = Field(default=None, alias="TSUNAGU_SIGNING_KEYS_FILE")
    profiles_url: str = Field(default="http://127.0.0.1:8101", alias="TSUNAGU_PROFILES_URL")
    matching_url: str = Field(default="http://127.0.0.1:8102", alias="TSUNAGU_MATCHING_URL")
    search_url: str = Field(default="http://127.0.0.1:8103", alias="TSUNAGU_SEARCH_URL")
    # Access tokens are short-lived and name their server-side session (checked on every call, so a logout
    # or a block ends them at once); the refresh token (rotated on each use) keeps a session going until
    # it has been idle for ``session_idle_days`` or reaches ``session_max_days`` (SessionSettings).
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60, alias="TSUNAGU_ACCESS_TOKEN_MINUTES")
    # Rate limits (the ``limits`` library's notation, e.g. "10/minute"). Sign-in per account (password
    # guessing against one account) and per client address (guessing across accounts; higher, since one
    # office or proxy may sign in many people); registration per client; writes (state-changing calls
    # through the proxy) per signed-in user, or per client address for anonymous ones.
    login_rate_limit: str = Field(default="10/minute", alias="TSUNAGU_LOGIN_RATE_LIMIT")
    login_rate_limit_per_client: str = Field(default="300/minute", alias="TSUNAGU_LOGIN_RATE_LIMIT_PER_CLIENT")
    register_rate_limit: str = Field(default="20/hour", alias="TSUNAGU_REGISTER_RATE_LIMIT")
    write_rate_limit: str = Field(default="300/minute", alias="TSUNAGU_WRITE_RATE_LIMIT")
    # Where the limiter counts: ``memory://`` (one process; development and tests) or ``redis://host:6379/0``
    # (production: several gateway replicas must share the counts, so production refuses ``memory://``).
    # Any storage URI of ``limits`` works; Kubernetes and compose run Valkey (deploy/k8s/22-valkey.yaml).
    rate_limit_storage: str = Field(default="memory://", alias="TSUNAGU_RATE_LIMIT_STORAGE")
    # OpenID Connect providers (an organisation's identity system), a JSON object by provider name:
    # {"chamber": {"issuer": "https://id.example.jp", "client_id": "...", "client_secret": "...",
    #              "role": "sme", "label": "商工会議所ID"}}. See docs/security.md.
    oidc_providers: dict[str, OidcProvider] = Field(default_factory=dict, alias="TSUNAGU_OIDC_PROVIDERS")
    # The expert CSV import is the one large upload (30,000 rows are about 17 MB).
    import_max_bytes: int = Field(default=64_000_000, ge=1_000, alias="TSUNAGU_IMPORT_MAX_BYTES")
    upstream_timeout_seconds: float = Field(default=120.0, alias="TSUNAGU_UPSTREAM_TIMEOUT")
    # Where people open the links of notifications and mails (the web UI's address as they see it).
    public_url: str = Field(default="http://127.0.0.1:8000", alias="TSUNAGU_PUBLIC_URL")
    # Mail over SMTP (issue 8). An empty host disables sending: mails stay pending and are sent once a
    # host is configured. ``make run`` points these at the local sink (tsunagu.mailsink).
    smtp_host: str = Field(default="", alias="TSUNAGU_SMTP_HOST")
    smtp_port: int = Field(default=25, ge=1, le=65535, alias="TSUNAGU_SMTP_PORT")
    smtp_username: str = Field(default="", alias="TSUNAGU_SMTP_USERNAME")
    smtp_password: str = Field(default="", alias="TSUNAGU_SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=False, alias="TSUNAGU_SMTP_STARTTLS")
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, alias="TSUNAGU_SMTP_TIMEOUT")
    mail_from: str = Field(default="つなぐ Tsunagu <noreply@tsunagu.example.jp>", alias="TSUNAGU_MAIL_FROM")
    # How often the sender looks for pending mails, and the longest wait between two attempts of one mail.
    mail_poll_seconds: float = Field(default=1.0, gt=0, alias="TSUNAGU_MAIL_POLL_SECONDS")
    mail_max_backoff_seconds: float = Field(default=600.0, gt=0, alias="TSUNAGU_MAIL_MAX_BACKOFF_SECONDS")
    # A mail that failed this many times (about 2 hours at the default back-off) is given up and marked failed;
    # one the server refuses for good (a 5xx for the recipient or the content) is marked failed at once.
    mail_max_attempts: int = Field(default=20, ge=1, le=1000, alias="TSUNAGU_MAIL_MAX_ATTEMPTS")

    @model_validator(mode="after")
    def _refuse_missing_secrets(self) -> GatewaySettings:
        """Production refuses to start with a default token secret, without signing keys, or with an OIDC
        provider that has no client secret, or with the limiter counting in process memory (``memory://``:
        each replica would count alone, so N replicas would allow N times every limit); a malformed rate
        limit fails anywhere."""
        if self.env == "production":
            _refuse_default_token_secret(self.token_secret)
            _refuse_process_local_limit_store(self.rate_limit_storage)
            if not self.signing_keys_json and not (self.signing_keys_file and self.signing_keys_file.is_file()):
                raise ValueError(
                    "TSUNAGU_SIGNING_KEYS または TSUNAGU_SIGNING_KEYS_FILE に署名鍵を設定してください "
                    "(production needs the gateway's signing keys: `tsunagu gateway keys generate`)"
                )
            for name, provider in self.oidc_providers.items():
                if len(provider.client_secret) < 16:
                    raise ValueError(
                        f"TSUNAGU_OIDC_PROVIDERS の {name} に client_secret（16文字以上）を設定してください "
                        f"(OIDC provider {name!r} needs its client secret in production)"
                    )
        for value in (
            self.login_rate_limit,
            self.login_rate_limit_per_client,
            self.register_rate_limit,
            self.write_rate_limit,
        ):
            parse(value)  # a malformed limit fails at start-up, not at the first sign-in
        return self

    @cached_property
    def rate_limiter(self) -> MovingWindowRateLimiter:
        """The limiter on the configured store (one per settings object, so one per gateway process). A store
        that cannot be reached raises ``limits.errors.StorageError`` (``gateway.service`` answers 503); a
        Redis/Valkey store gives up after two seconds rather than holding the request."""
        options: dict[str, object] = {"wrap_exceptions": True}
        if self.rate_limit_storage.startswith(("redis://", "rediss://", "redis+unix://")):
            options |= {"key_prefix": LIMIT_KEY_PREFIX, "socket_connect_timeout": 2.0, "socket_timeout": 2.0}
        return MovingWindowRateLimiter(storage_from_string(self.rate_limit_storage, **options))

    def rate_limit(self, name: str) -> RateLimitItem:
        """One of the limits above by its setting's name (``login_rate_limit``...)."""
        return parse(getattr(self, name))

    def service_url(self, service: str) -> str:
        """The base URL of an upstream service (profiles, matching, search)."""
        return getattr(self, f"{service}_url").rstrip("/")
