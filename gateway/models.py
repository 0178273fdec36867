"""The gateway's tables (on a registry of the gateway's own): user accounts, and what the people who own
those accounts are told: notifications in the app and the mails to send (the gateway owns the users and
their addresses, so it is the one place that can tell them). ``processed_events`` makes the notification
consumer apply each event once.

Sign-in (issue 9): a server-side ``AuthSession`` per sign-in, which every access token names and every call
checks (so ending it ends its tokens at once); its ``RefreshToken``s, stored as hashes, one current and the
used ones kept to recognise a stolen token that comes back; the ``AuditEvent`` log; and for sign-in through
an OpenID Connect provider, the pending ``OidcLogin`` (state, nonce, PKCE verifier) and the ``OidcIdentity``
linking a provider's subject to an account."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field

from tsunagu.db import UtcDateTime, service_base, utcnow
from tsunagu.outbox import ProcessedEventFields

GatewayModel = service_base("gateway")


class User(GatewayModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=200)
    display_name: str = Field(max_length=100)
    role: str = Field(max_length=20)
    # A broker's or hub's prefectures (JIS codes); empty for everyone else.
    prefectures: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ProcessedEvent(ProcessedEventFields, GatewayModel, table=True):
    __tablename__ = "processed_events"


class Notification(GatewayModel, table=True):
    """One thing one person is told in the app (``GET /api/v1/notifications``); unread until ``read_at``."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read_created", "user_id", "read_at", "created_at"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    user_id: str = Field(max_length=64)
    kind: str = Field(max_length=100)  # the event's subject, e.g. matching.proposal.accepted
    event_id: str = Field(max_length=64)
    title_ja: str = Field(max_length=200)
    title_en: str = Field(max_length=200)
    body_ja: str = Field(max_length=4000)
    body_en: str = Field(max_length=4000)
    link: str = Field(max_length=500)  # a path of the web UI, e.g. /requests/{id}
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class MailMessage(GatewayModel, table=True):
    """A mail to send (``gateway.mailer``): pending until ``sent_at``; each failure pushes
    ``next_attempt_at`` back, so a mail server that is down delays mail and never loses it. A mail the server
    refuses for good, or that failed too often, ends with ``failed_at`` (and the error)."""

    __tablename__ = "mail_messages"
    __table_args__ = (Index("ix_mail_messages_pending", "sent_at", "next_attempt_at"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    notification_id: str | None = Field(default=None, max_length=64)
    to_address: str = Field(max_length=254)
    subject: str = Field(max_length=400)
    body: str = Field(max_length=10000)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Given up: refused for good by the server, or too many attempts (``gateway.mailer``); never sent again.
    failed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AuthSession(GatewayModel, table=True):
    """One sign-in: alive until ``ended_at`` (logout, password change, block, a reused refresh token) or
    until idle or too old (``gateway.service`` says when)."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_user_ended", "user_id", "ended_at"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    user_id: str = Field(max_length=64)
    method: str = Field(max_length=100)  # "password" or "oidc:<provider>"
    client_ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_used_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    end_reason: str | None = Field(default=None, max_length=50)


class RefreshToken(GatewayModel, table=True):
    """A refresh token of a session, by its SHA-256 (the token itself is never stored). Used once: the
    refresh that uses it issues the next; a used one that comes back means it was copied, and ends the
    session."""

    __tablename__ = "refresh_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    session_id: str = Field(max_length=64, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class AuditEvent(GatewayModel, table=True):
    """Something security-relevant that happened: sign-ins and failed ones, role changes, verifications,
    blocks, password changes (``gateway.schemas.AuditKind``). Written, never changed."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_kind_at", "kind", "at"),
        Index("ix_audit_events_user_at", "user_id", "at"),
        Index("ix_audit_events_actor_at", "actor_id", "at"),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    kind: str = Field(max_length=50)
    actor_id: str | None = Field(default=None, max_length=64)  # who did it (None: anonymous or the system)
    user_id: str | None = Field(default=None, max_length=64)  # whose account it concerns
    # The identifier typed at a failed sign-in (normalised), or another object (an expert profile's id).
    target: str | None = Field(default=None, max_length=254)
    client_ip: str = Field(default="", max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class OidcLogin(GatewayModel, table=True):
    """A sign-in started at an OpenID Connect provider and not yet come back: the state (also in a cookie
    of the browser that started it), the nonce the ID token must carry, the PKCE verifier and the page to
    return to. Used once."""

    __tablename__ = "oidc_logins"

    state: str = Field(primary_key=True, max_length=100)
    provider: str = Field(max_length=50)
    nonce: str = Field(max_length=100)
    code_verifier: str = Field(max_length=200)
    return_to: str = Field(default="/", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class OidcIdentity(GatewayModel, table=True):
    """An account's identity at a provider (its ``sub``): the link made at the first sign-in."""

    __tablename__ = "oidc_identities"

    provider: str = Field(primary_key=True, max_length=50)
    subject: str = Field(primary_key=True, max_length=255)
    user_id: str = Field(max_length=64, index=True)
    email: str = Field(default="", max_length=254)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
