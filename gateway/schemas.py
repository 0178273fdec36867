"""Validated bodies and typed answers of the gateway's own routes (accounts, sessions, the audit log, dead
letters, notifications), and ``normalize_identifier``: the one form of a sign-in identifier."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tsunagu.pagination import Page
from tsunagu.types import Email, PrefectureCode
from tsunagu.validation import InputModel


def normalize_identifier(value: str) -> str:
    """The one form of a sign-in identifier (an e-mail address), used alike by registration (what is
    stored), sign-in (what is looked up) and the rate limits (what is counted): NFKC (full-width
    ``ＯＷＮＥＲ＠…`` is ``owner@…``), trimmed, case-folded. Without it, `` owner@…`` or ``OWNER@…`` would
    be another key to the limiter and a fresh ten guesses."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


# An account's e-mail address: valid syntax (email-validator), then the identifier's one form.
AccountEmail = Annotated[Email, AfterValidator(normalize_identifier)]

# Sign-in compares with the stored address in the identifier's one form and does not re-validate the
# syntax: an account created before the stricter check must still be able to sign in.
SignInEmail = Annotated[str, Field(max_length=254), AfterValidator(normalize_identifier)]


def _distinct_sorted(codes: list[str]) -> list[str]:
    return sorted(set(codes))


class RegisterBody(InputModel):
    """Self sign-up is for SMEs and experts; brokers, hubs and admins are created by an admin."""

    email: AccountEmail
    password: str = Field(min_length=10, max_length=200)
    display_name: str = Field(min_length=1, max_length=100)
    role: Literal["sme", "expert"]


class AdminCreateUserBody(InputModel):
    email: AccountEmail
    password: str = Field(min_length=10, max_length=200)
    display_name: str = Field(min_length=1, max_length=100)
    role: Literal["sme", "expert", "broker", "hub", "admin"]
    # A broker's or hub's prefectures: JIS codes, names ("東京都", "東京") or numbers, stored as sorted codes.
    prefectures: Annotated[list[PrefectureCode], Field(max_length=47), AfterValidator(_distinct_sorted)] = Field(
        default_factory=list
    )


class LoginBody(InputModel):
    email: SignInEmail
    password: str = Field(max_length=200)


class PasswordForm(InputModel):
    """The OAuth 2 password grant's form (RFC 6749 4.3): ``username`` is the e-mail address."""

    grant_type: Literal["password"] | None = None
    username: SignInEmail
    password: str = Field(max_length=200)
    scope: str = Field(default="", max_length=200)
    client_id: str | None = Field(default=None, max_length=200)
    client_secret: str | None = Field(default=None, max_length=200)


class RefreshBody(InputModel):
    """The refresh token, in the body (API clients) or, when empty, from the HttpOnly cookie (the web UI)."""

    refresh_token: str | None = Field(default=None, max_length=200)


class PasswordChangeBody(InputModel):
    current_password: str = Field(max_length=200)
    new_password: str = Field(min_length=10, max_length=200)


class BlockBody(InputModel):
    reason: str = Field(default="", max_length=500)


class UserUpdate(InputModel):
    """What an admin may change on an account (typed partial update: only the fields sent change)."""

    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    role: Literal["sme", "expert", "broker", "hub", "admin"] | None = None
    prefectures: Annotated[list[PrefectureCode], Field(max_length=47), AfterValidator(_distinct_sorted)] | None = None


class UserRead(BaseModel):
    id: str
    email: str
    display_name: str
    role: str
    prefectures: list[str]


class AdminUserRead(UserRead):
    """An account as an admin sees it: also whether it is blocked."""

    active: bool
    created_at: datetime


class AdminUserPage(Page[AdminUserRead]):
    """Accounts, newest first."""


class SessionTokens(BaseModel):
    """What one sign-in or refresh hands out: a short-lived access token naming the session, and the
    refresh token that gets the next one (used once)."""

    session_id: str
    access_token: str
    expires_in: int  # seconds the access token lives
    refresh_token: str
    refresh_expires_in: int  # seconds the refresh token lives if unused (the session's idle window)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    user: UserRead


class AuditKind(StrEnum):
    """What the audit log records."""

    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_OUT = "sign_out"
    REFRESH_REUSED = "refresh_token_reused"  # a used refresh token came back: its session was ended
    REGISTERED = "registered"
    USER_CREATED = "user_created"
    ROLE_CHANGED = "role_changed"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name
    BLOCKED = "blocked"
    UNBLOCKED = "unblocked"
    OIDC_LINKED = "oidc_linked"  # a provider's identity linked to an account (first sign-in)
    EXPERT_VERIFIED = "expert_verified"
    EXPERT_REJECTED = "expert_rejected"


class AuditEventRead(BaseModel):
    id: str
    at: datetime
    kind: AuditKind
    actor_id: str | None
    user_id: str | None
    target: str | None
    client_ip: str
    details: dict[str, Any]


class AuditPage(Page[AuditEventRead]):
    """Audit events, newest first."""


class DeadLetter(BaseModel):
    """An event a consumer gave up on (``tsunagu.messaging``), with the stream sequence to replay it by."""

    model_config = ConfigDict(extra="allow")

    sequence: int
    consumer: str | None = None
    stream: str | None = None
    stream_sequence: int | None = None
    original_subject: str | None = None
    deliveries: int | None = None
    error: str | None = None
    failed_at: str | None = None
    original_payload: str | None = None


class DeadLetterPage(Page[DeadLetter]):
    """The newest dead letters; ``count`` is kept for the clients written before ``Page``."""

    count: int


class ReplayResult(BaseModel):
    replayed_to: str
    sequence: int


class NotificationRead(BaseModel):
    """One thing the caller was told: Japanese first, English beside, and the page to open."""

    id: str
    kind: str
    title_ja: str
    title_en: str
    body_ja: str
    body_en: str
    link: str
    created_at: datetime
    read_at: datetime | None


class NotificationPage(Page[NotificationRead]):
    """The caller's notifications, unread first then newest; ``unread`` counts all of their unread ones."""

    unread: int


class ReadAllResult(BaseModel):
    marked_read: int


class Jwk(BaseModel):
    """A public Ed25519 key (RFC 8037): no private part is ever served."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    use: Literal["sig"] = "sig"
    alg: Literal["Ed25519"] = "Ed25519"


class JwksRead(BaseModel):
    keys: list[Jwk]
