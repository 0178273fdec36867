"""Every query of the gateway: user accounts, sessions and refresh tokens, the audit log, OIDC sign-ins,
notifications, the mails to send, processed events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, delete, func, or_, update
from sqlmodel import Session, col, select

from gateway.models import (
    AuditEvent,
    AuthSession,
    MailMessage,
    Notification,
    OidcIdentity,
    OidcLogin,
    ProcessedEvent,
    RefreshToken,
    User,
)
from tsunagu.outbox import claim_event


def user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email)).first()


def user_by_id(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def add_user(session: Session, user: User) -> User:
    session.add(user)
    session.flush()
    return user


def users_by_ids(session: Session, user_ids: list[str]) -> list[User]:
    if not user_ids:
        return []
    return list(session.exec(select(User).where(col(User.id).in_(user_ids))))


def active_users_with_role(session: Session, role: str) -> list[User]:
    """Every active account of a role (brokers: a few hundred at most; their prefectures are a JSON list,
    filtered by the caller the same way on SQLite and PostgreSQL)."""
    return list(session.exec(select(User).where(User.role == role, User.active == True)))  # noqa: E712


def claim(session: Session, event_id: str, consumer: str) -> bool:
    """True the first time ``consumer`` sees this event (recorded in the caller's transaction)."""
    return claim_event(session, ProcessedEvent, event_id, consumer)


def add_notification(session: Session, notification: Notification, mail: MailMessage | None) -> None:
    session.add(notification)
    if mail is not None:
        session.add(mail)


def notifications_of(session: Session, user_id: str, *, limit: int, offset: int) -> tuple[list[Notification], int]:
    """The user's notifications, unread first, then newest first; and how many there are."""
    unread_first = case((col(Notification.read_at).is_(None), 0), else_=1)
    items = session.exec(
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(unread_first, col(Notification.created_at).desc(), col(Notification.id).desc())
        .limit(limit)
        .offset(offset)
    )
    total = session.exec(select(func.count()).select_from(Notification).where(Notification.user_id == user_id)).one()
    return list(items), int(total)


def unread_count(session: Session, user_id: str) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, col(Notification.read_at).is_(None))
        ).one()
    )


def notification_by_id(session: Session, notification_id: str) -> Notification | None:
    return session.get(Notification, notification_id)


def mark_all_read(session: Session, user_id: str, now: datetime) -> int:
    result = session.exec(  # type: ignore[call-overload]
        update(Notification)
        .where(col(Notification.user_id) == user_id, col(Notification.read_at).is_(None))
        .values(read_at=now)
    )
    return int(result.rowcount or 0)


def due_mail_ids(session: Session, now: datetime, limit: int) -> list[tuple[str, datetime]]:
    """Pending mails whose next attempt is due, oldest first: (id, next_attempt_at) to claim them by."""
    rows = session.exec(
        select(MailMessage.id, MailMessage.next_attempt_at)
        .where(
            col(MailMessage.sent_at).is_(None),
            col(MailMessage.failed_at).is_(None),
            col(MailMessage.next_attempt_at) <= now,
        )
        .order_by(col(MailMessage.next_attempt_at), col(MailMessage.created_at))
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


def lease_mail(session: Session, mail_id: str, seen_next_attempt_at: datetime, lease_until: datetime) -> bool:
    """Compare-and-set: take a due mail for this sender until ``lease_until``. False when another gateway
    process took it first (two replicas never send one mail twice)."""
    result = session.exec(  # type: ignore[call-overload]
        update(MailMessage)
        .where(
            col(MailMessage.id) == mail_id,
            col(MailMessage.sent_at).is_(None),
            col(MailMessage.next_attempt_at) == seen_next_attempt_at,
        )
        .values(next_attempt_at=lease_until)
    )
    return result.rowcount == 1


def mail_by_id(session: Session, mail_id: str) -> MailMessage | None:
    return session.get(MailMessage, mail_id)


def pending_mail_count(session: Session) -> int:
    return int(
        session.exec(select(func.count()).select_from(MailMessage).where(col(MailMessage.sent_at).is_(None))).one()
    )


# --- accounts (admin) ------------------------------------------------------------------------------------


def users_page(
    session: Session, *, limit: int, offset: int, role: str | None = None, active: bool | None = None
) -> tuple[list[User], int]:
    """Accounts, newest first, optionally of one role or blocked state; and how many match."""
    conditions = []
    if role is not None:
        conditions.append(col(User.role) == role)
    if active is not None:
        conditions.append(col(User.active) == active)
    items = session.exec(
        select(User).where(*conditions).order_by(col(User.created_at).desc(), col(User.id)).limit(limit).offset(offset)
    )
    total = session.exec(select(func.count()).select_from(User).where(*conditions)).one()
    return list(items), int(total)


# --- sessions and refresh tokens -------------------------------------------------------------------------


def add_session(session: Session, auth_session: AuthSession) -> AuthSession:
    session.add(auth_session)
    session.flush()
    return auth_session


def session_by_id(session: Session, session_id: str) -> AuthSession | None:
    return session.get(AuthSession, session_id)


def live_session_and_user(session: Session, session_id: str) -> tuple[AuthSession, User] | None:
    """The session if it has not ended, with its user (one query: every authenticated call asks)."""
    row = session.exec(
        select(AuthSession, User)
        .join(User, col(User.id) == col(AuthSession.user_id))
        .where(col(AuthSession.id) == session_id, col(AuthSession.ended_at).is_(None))
    ).first()
    return (row[0], row[1]) if row is not None else None


def end_sessions_of(session: Session, user_id: str, now: datetime, reason: str) -> int:
    """End every live session of a user; how many were live."""
    result = session.exec(  # type: ignore[call-overload]
        update(AuthSession)
        .where(col(AuthSession.user_id) == user_id, col(AuthSession.ended_at).is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    return int(result.rowcount or 0)


def end_session(session: Session, session_id: str, now: datetime, reason: str) -> bool:
    result = session.exec(  # type: ignore[call-overload]
        update(AuthSession)
        .where(col(AuthSession.id) == session_id, col(AuthSession.ended_at).is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    return result.rowcount == 1


def touch_session(session: Session, session_id: str, now: datetime) -> None:
    session.exec(  # type: ignore[call-overload]
        update(AuthSession).where(col(AuthSession.id) == session_id).values(last_used_at=now)
    )


def add_refresh_token(session: Session, token: RefreshToken) -> None:
    session.add(token)
    session.flush()


def refresh_token_by_hash(session: Session, token_hash: str) -> RefreshToken | None:
    return session.get(RefreshToken, token_hash)


def use_refresh_token(session: Session, token_hash: str, now: datetime) -> bool:
    """Compare-and-set: mark the token used. False when it was used already (by a concurrent refresh too:
    two requests with one token never both get a new one)."""
    result = session.exec(  # type: ignore[call-overload]
        update(RefreshToken)
        .where(col(RefreshToken.token_hash) == token_hash, col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


# --- the audit log ----------------------------------------------------------------------------------------


def add_audit(session: Session, event: AuditEvent) -> None:
    session.add(event)


def audit_page(
    session: Session,
    *,
    limit: int,
    offset: int,
    kinds: list[str] | None = None,
    user_id: str | None = None,
    actor_id: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[AuditEvent], int]:
    """Audit events matching every filter given, newest first; and how many match."""
    conditions = []
    if kinds:
        conditions.append(col(AuditEvent.kind).in_(kinds))
    if user_id is not None:
        conditions.append(col(AuditEvent.user_id) == user_id)
    if actor_id is not None:
        conditions.append(col(AuditEvent.actor_id) == actor_id)
    if target is not None:
        conditions.append(col(AuditEvent.target) == target)
    if since is not None:
        conditions.append(col(AuditEvent.at) >= since)
    if until is not None:
        conditions.append(col(AuditEvent.at) < until)
    items = session.exec(
        select(AuditEvent)
        .where(*conditions)
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(limit)
        .offset(offset)
    )
    total = session.exec(select(func.count()).select_from(AuditEvent).where(*conditions)).one()
    return list(items), int(total)


# --- OpenID Connect ---------------------------------------------------------------------------------------


def add_oidc_login(session: Session, login: OidcLogin) -> None:
    session.add(login)


def prune_oidc_logins(session: Session, created_before: datetime) -> int:
    """Forget sign-ins started before this moment (used or abandoned: none can finish any more)."""
    result = session.exec(  # type: ignore[call-overload]
        delete(OidcLogin).where(col(OidcLogin.created_at) < created_before)
    )
    return int(result.rowcount or 0)


def use_oidc_login(session: Session, state: str, now: datetime) -> OidcLogin | None:
    """Take a pending sign-in by its state, once (compare-and-set): None if unknown or already used."""
    result = session.exec(  # type: ignore[call-overload]
        update(OidcLogin).where(col(OidcLogin.state) == state, col(OidcLogin.used_at).is_(None)).values(used_at=now)
    )
    if result.rowcount != 1:
        return None
    return session.get(OidcLogin, state)


def oidc_identity(session: Session, provider: str, subject: str) -> OidcIdentity | None:
    return session.get(OidcIdentity, (provider, subject))


def add_oidc_identity(session: Session, identity: OidcIdentity) -> None:
    session.add(identity)
    session.flush()


# --- retention (``tsunagu gateway prune``) -----------------------------------------------------------------


def prune_sessions(
    session: Session, *, ended_before: datetime, idle_before: datetime, started_before: datetime, limit: int
) -> tuple[int, int]:
    """Delete up to ``limit`` sessions that ended before ``ended_before``, or were last used before
    ``idle_before``, or started before ``started_before`` (the last two: sessions that ran out without anyone
    ending them), with all their refresh tokens. Answers (sessions, refresh tokens) deleted."""
    over = or_(
        col(AuthSession.ended_at) < ended_before,
        col(AuthSession.last_used_at) < idle_before,
        col(AuthSession.created_at) < started_before,
    )
    ids = list(session.exec(select(AuthSession.id).where(over).limit(limit)))
    if not ids:
        return 0, 0
    tokens = session.exec(  # type: ignore[call-overload]
        delete(RefreshToken).where(col(RefreshToken.session_id).in_(ids))
    )
    sessions = session.exec(  # type: ignore[call-overload]
        delete(AuthSession).where(col(AuthSession.id).in_(ids))
    )
    return int(sessions.rowcount or 0), int(tokens.rowcount or 0)


def prune_audit_events(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` audit entries recorded before ``before``, oldest first."""
    ids = list(
        session.exec(select(AuditEvent.id).where(col(AuditEvent.at) < before).order_by(col(AuditEvent.at)).limit(limit))
    )
    if not ids:
        return 0
    result = session.exec(  # type: ignore[call-overload]
        delete(AuditEvent).where(col(AuditEvent.id).in_(ids))
    )
    return int(result.rowcount or 0)
