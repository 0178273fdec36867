"""Accounts and sessions: sign-up, sign-in (Argon2 password hashes via pwdlib), the rate limits (``limits``
on the configured store), server-side sessions with short-lived access tokens and rotated refresh tokens,
logout, password changes, what admins do to accounts (create, change role, block, unblock), and the audit
log of all of it. Who a signed-in user is for the rest of the system is ``gateway.security.principal_of``.

Every sign-in identifier goes through ``gateway.schemas.normalize_identifier`` once, so registration, sign-in
and the rate limits see the same key.

Functions here change the session; the caller (a route, the web UI, the CLI, the demo loader) commits. One
exception: a failed sign-in or a reused refresh token is written to the audit log (and a reused token's
session ended) and committed before the 401 is raised, since the caller's transaction is rolled back."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from limits.errors import StorageError
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from sqlmodel import Session

from gateway import repository
from gateway.models import AuditEvent, AuthSession, RefreshToken, User
from gateway.schemas import (
    AdminCreateUserBody,
    AdminUserRead,
    AuditEventRead,
    AuditKind,
    AuditPage,
    PasswordChangeBody,
    RegisterBody,
    SessionTokens,
    TokenResponse,
    UserRead,
    UserUpdate,
    normalize_identifier,
)
from gateway.security import issue_access_token, principal_of
from gateway.settings import GatewaySettings, SessionSettings
from tsunagu.auth import REGIONAL_ROLES, Principal, Role
from tsunagu.contracts import ExpertVerificationV1, PermanentEventError, parse_event_data
from tsunagu.db import utcnow
from tsunagu.errors import ApiError, FieldError, not_found
from tsunagu.events import EventEnvelope, Subjects

log = logging.getLogger(__name__)
password_hash = PasswordHash.recommended()
# Verifying against a fixed hash when the e-mail is unknown keeps sign-in time the same either way.
_DUMMY_HASH = password_hash.hash("tsunagu-timing-equaliser")
# Two requests of one browser may refresh with the same token at once; the one that loses the race within
# this many seconds is refused without ending the session. A used token that comes back later was copied.
REFRESH_REUSE_GRACE_SECONDS = 10

__all__ = ["principal_of"]  # re-exported: who an account is for the rest of the system


def to_read(user: User) -> UserRead:
    return UserRead(
        id=user.id, email=user.email, display_name=user.display_name, role=user.role, prefectures=user.prefectures
    )


def to_admin_read(user: User) -> AdminUserRead:
    return AdminUserRead(**to_read(user).model_dump(), active=user.active, created_at=_aware(user.created_at))


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC; PostgreSQL aware. Compare and answer in aware UTC either way."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def audit(
    session: Session,
    kind: AuditKind,
    *,
    actor_id: str | None = None,
    user_id: str | None = None,
    target: str | None = None,
    client_ip: str = "",
    at: datetime | None = None,
    **details: Any,
) -> None:
    """Record one audit event in the caller's transaction."""
    repository.add_audit(
        session,
        AuditEvent(
            at=at or utcnow(),
            kind=kind.value,
            actor_id=actor_id,
            user_id=user_id,
            target=target[:254] if target else None,
            client_ip=client_ip[:64],
            details=details,
        ),
    )


# --- audit of what other services decided (the durable consumer gateway-audit) --------------------------

AUDIT_CONSUMER = "gateway-audit"
# An admin's verdict on a claimed expert profile (profiles decides and emits; the gateway keeps the log).
AUDITED_EVENTS = {
    Subjects.EXPERT_VERIFIED: AuditKind.EXPERT_VERIFIED,
    Subjects.EXPERT_REJECTED: AuditKind.EXPERT_REJECTED,
}


def audit_event(session: Session, envelope: EventEnvelope) -> bool:
    """Record a verification or rejection of an expert profile in the audit log, once per event id
    (redeliveries are skipped). The event names the claimant and the profile; the deciding admin is
    profiles' to know (its contract does not carry them)."""
    kind = AUDITED_EVENTS.get(envelope.type)
    if kind is None:
        raise PermanentEventError(f"the audit consumer does not handle {envelope.type}")
    data = parse_event_data(envelope, envelope.type)
    assert isinstance(data, ExpertVerificationV1)
    if not repository.claim(session, envelope.id, AUDIT_CONSUMER):
        return False
    audit(
        session,
        kind,
        user_id=data.user_id,
        target=data.expert_id,
        at=envelope.occurred_at,
        expert_name=data.expert_name,
        registration_number=data.registration_number,
        claim_id=data.claim_id,
        reason=data.reason,
        event_id=envelope.id,
    )
    return True


# --- rate limits --------------------------------------------------------------------------------------------


def _limit(settings: GatewaySettings, setting: str, key: str, message_ja: str, message_en: str) -> None:
    """Count one hit of ``key`` against a limit; 429 with Retry-After once it is used up. When the shared
    store cannot be reached the call is refused (503), not let through: a limit that lapses whenever the
    store is down would invite the guessing it is there to stop (deploy/README.md, Valkey)."""
    item = settings.rate_limit(setting)
    limiter = settings.rate_limiter
    try:
        if limiter.hit(item, setting, key):
            return
        reset_at, _remaining = limiter.get_window_stats(item, setting, key)
    except StorageError as exc:
        log.warning("rate-limit store unreachable: %s", exc)
        raise ApiError(
            503,
            "rate_limit_store_unavailable",
            "一時的に受け付けられません。しばらく待ってから再度お試しください",
            "Temporarily unavailable (the rate-limit store cannot be reached); try again shortly",
            headers={"Retry-After": "5"},
        ) from exc
    retry_after = max(1, math.ceil(reset_at - time.time()))
    raise ApiError(
        429,
        "too_many_requests",
        message_ja,
        message_en,
        headers={"Retry-After": str(retry_after)},
    )


def check_sign_in_rate(settings: GatewaySettings, email: str, client: str) -> None:
    """Refuse (429) once one account or one client has tried to sign in too often. The account is counted
    in the identifier's one form, so spaces, case or full-width letters do not make a fresh key."""
    message = (
        "ログイン試行が多すぎます。しばらく待ってから再度お試しください",
        "Too many sign-in attempts; wait a little",
    )
    _limit(settings, "login_rate_limit", normalize_identifier(email), *message)
    _limit(settings, "login_rate_limit_per_client", client, *message)


def check_oidc_start_rate(settings: GatewaySettings, client: str) -> None:
    """Starting an OIDC sign-in counts like a sign-in attempt of the client."""
    _limit(
        settings,
        "login_rate_limit_per_client",
        client,
        "ログイン試行が多すぎます。しばらく待ってから再度お試しください",
        "Too many sign-in attempts; wait a little",
    )


def check_register_rate(settings: GatewaySettings, client: str) -> None:
    _limit(
        settings,
        "register_rate_limit",
        client,
        "登録の試行が多すぎます。しばらく待ってから再度お試しください",
        "Too many sign-ups from this address; wait a little",
    )


def check_write_rate(settings: GatewaySettings, caller: Principal, client: str) -> None:
    """Writes (state-changing calls through the proxy): per signed-in user, per client address otherwise."""
    key = f"user:{caller.sub}" if caller.is_authenticated else f"client:{client}"
    _limit(
        settings,
        "write_rate_limit",
        key,
        "操作が多すぎます。しばらく待ってから再度お試しください",
        "Too many changes in a short time; wait a little",
    )


# --- accounts -----------------------------------------------------------------------------------------------


def _create(
    session: Session,
    *,
    email: str,
    password: str | None,
    display_name: str,
    role: str,
    prefectures: list[str],
) -> User:
    email = normalize_identifier(email)
    if repository.user_by_email(session, email) is not None:
        raise ApiError(
            409,
            "email_taken",
            "このメールアドレスは既に登録されています",
            "This e-mail address is already registered",
            [FieldError("email", "登録済みです", "Already registered")],
        )
    user = User(
        email=email,
        # No password: an account that signs in only through an OIDC provider ("" never verifies).
        password_hash=password_hash.hash(password) if password else "",
        display_name=display_name,
        role=role,
        prefectures=prefectures,
    )
    return repository.add_user(session, user)


def create_linked_account(
    session: Session, *, email: str, display_name: str, role: str, prefectures: list[str]
) -> User:
    """An account made at the first sign-in through an OIDC provider: no password (it signs in there), the
    role the admin mapped for the provider."""
    if Role(role) in REGIONAL_ROLES and not prefectures:
        raise ApiError(
            403,
            "oidc_role_unmapped",
            "この連携先の担当都道府県が設定されていません。管理者にお問い合わせください",
            "The provider maps to a regional role without prefectures; ask an admin",
        )
    return _create(session, email=email, password=None, display_name=display_name, role=role, prefectures=prefectures)


def register(
    session: Session, body: RegisterBody, *, settings: GatewaySettings | None = None, client_ip: str = ""
) -> User:
    """Self sign-up (an SME or an expert). With ``settings``, counted against the registration limit per
    client address (the API and the web form both pass it)."""
    if settings is not None:
        check_register_rate(settings, client_ip or "unknown")
    user = _create(
        session,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        role=body.role,
        prefectures=[],
    )
    audit(session, AuditKind.REGISTERED, actor_id=user.id, user_id=user.id, client_ip=client_ip, role=user.role)
    return user


def _require_prefectures(role: str, prefectures: list[str]) -> None:
    if Role(role) in REGIONAL_ROLES and not prefectures:
        raise ApiError(
            422,
            "validation_error",
            "支援機関・ハブの担当者には担当都道府県が必要です（prefectures）",
            "Brokers and hub staff need their prefectures (prefectures)",
            [FieldError("prefectures", "1つ以上指定してください", "Give at least one")],
        )


def admin_create(session: Session, body: AdminCreateUserBody, admin: Principal | None = None) -> User:
    _require_prefectures(body.role, body.prefectures)
    user = _create(
        session,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        role=body.role,
        prefectures=body.prefectures,
    )
    audit(
        session,
        AuditKind.USER_CREATED,
        actor_id=admin.sub if admin else None,
        user_id=user.id,
        role=user.role,
        prefectures=user.prefectures,
    )
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    """The account whose identifier and password these are; 401 otherwise (same time either way)."""
    user = repository.user_by_email(session, normalize_identifier(email))
    if user is None or not user.active or not user.password_hash:
        password_hash.verify(password, _DUMMY_HASH)
        user = None
    else:
        try:
            if not password_hash.verify(password, user.password_hash):
                user = None
        except UnknownHashError:
            user = None
    if user is None:
        raise ApiError(
            401,
            "invalid_credentials",
            "メールアドレスまたはパスワードが正しくありません",
            "Wrong e-mail address or password",
        )
    return user


def account_of(session: Session, principal: Principal) -> User:
    """The signed-in caller's own account (404 if it was removed since the token was issued)."""
    user = repository.user_by_id(session, principal.sub)
    if user is None:
        raise not_found("利用者", "User")
    return user


def ensure_user(
    session: Session, *, email: str, password: str, display_name: str, role: str, prefectures: list[str] | None = None
) -> User:
    """Create the account if it does not exist yet (bootstrap of the first admin, demo accounts)."""
    existing = repository.user_by_email(session, normalize_identifier(email))
    if existing is not None:
        return existing
    return _create(
        session,
        email=email,
        password=password,
        display_name=display_name,
        role=role,
        prefectures=prefectures or [],
    )


# --- sessions -----------------------------------------------------------------------------------------------


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue(session: Session, user: User, auth_session: AuthSession, settings: GatewaySettings) -> SessionTokens:
    refresh = secrets.token_urlsafe(32)
    repository.add_refresh_token(session, RefreshToken(token_hash=_hash_token(refresh), session_id=auth_session.id))
    access, ttl = issue_access_token(user, auth_session.id, settings)
    return SessionTokens(
        session_id=auth_session.id,
        access_token=access,
        expires_in=ttl,
        refresh_token=refresh,
        refresh_expires_in=settings.session_idle_days * 86400,
    )


def start_session(
    session: Session,
    user: User,
    settings: GatewaySettings,
    *,
    method: str = "password",
    client_ip: str = "",
    user_agent: str = "",
) -> SessionTokens:
    """A new server-side session for a signed-in user, its first tokens, and the audit record."""
    auth_session = repository.add_session(
        session, AuthSession(user_id=user.id, method=method, client_ip=client_ip[:64], user_agent=user_agent[:300])
    )
    audit(session, AuditKind.SIGN_IN, actor_id=user.id, user_id=user.id, client_ip=client_ip, method=method)
    return _issue(session, user, auth_session, settings)


def sign_in(
    session: Session,
    email: str,
    password: str,
    client_ip: str,
    settings: GatewaySettings,
    *,
    user_agent: str = "",
) -> tuple[User, SessionTokens]:
    """The whole password sign-in, for the API and the web form alike: the rate limits (per account and
    per client), the password check, a new session and its tokens, the audit record. A failure is audited
    and committed before the 401; the caller commits a success."""
    check_sign_in_rate(settings, email, client_ip)
    identifier = normalize_identifier(email)
    try:
        user = authenticate(session, identifier, password)
    except ApiError:
        session.rollback()
        known = repository.user_by_email(session, identifier)
        audit(
            session,
            AuditKind.SIGN_IN_FAILED,
            user_id=known.id if known else None,
            target=identifier,
            client_ip=client_ip,
            reason="blocked" if known is not None and not known.active else "credentials",
        )
        session.commit()
        raise
    return user, start_session(session, user, settings, client_ip=client_ip, user_agent=user_agent)


def token_response(user: User, tokens: SessionTokens) -> TokenResponse:
    return TokenResponse(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        refresh_expires_in=tokens.refresh_expires_in,
        user=to_read(user),
    )


def _refresh_refused(code: str = "invalid_refresh_token") -> ApiError:
    if code == "session_ended":
        return ApiError(
            401,
            code,
            "ログインの有効期限が切れました。再度ログインしてください",
            "The session has ended; sign in again",
        )
    return ApiError(401, code, "再度ログインしてください", "Invalid refresh token; sign in again")


def refresh(
    session: Session, refresh_token: str, settings: GatewaySettings, *, client_ip: str = ""
) -> tuple[User, SessionTokens]:
    """Exchange a refresh token (used once) for new tokens of the same session.

    A refresh token that was used already and comes back is a copy someone else holds: the session ends
    (audited, committed before the 401), so neither the thief nor the owner can go on with it. Within
    ``REFRESH_REUSE_GRACE_SECONDS`` it is taken for two requests of one browser racing, and only refused.
    An idle or too old session ends too."""
    token_hash = _hash_token(refresh_token)
    stored = repository.refresh_token_by_hash(session, token_hash)
    if stored is None:
        raise _refresh_refused()
    auth_session = repository.session_by_id(session, stored.session_id)
    if auth_session is None or auth_session.ended_at is not None:
        raise _refresh_refused("session_ended")
    now = utcnow()
    if not repository.use_refresh_token(session, token_hash, now):
        session.rollback()
        used_at = _aware(stored.used_at) if stored.used_at else now
        if now - used_at <= timedelta(seconds=REFRESH_REUSE_GRACE_SECONDS):
            raise _refresh_refused()
        if repository.end_session(session, auth_session.id, now, "refresh_token_reused"):
            audit(
                session,
                AuditKind.REFRESH_REUSED,
                user_id=auth_session.user_id,
                client_ip=client_ip,
                session_id=auth_session.id,
            )
        session.commit()
        raise _refresh_refused("session_ended")
    user = repository.user_by_id(session, auth_session.user_id)
    idle = now - _aware(auth_session.last_used_at) > timedelta(days=settings.session_idle_days)
    too_old = now - _aware(auth_session.created_at) > timedelta(days=settings.session_max_days)
    if user is None or not user.active or idle or too_old:
        repository.end_session(session, auth_session.id, now, "idle" if idle else "expired")
        session.commit()
        raise _refresh_refused("session_ended")
    repository.touch_session(session, auth_session.id, now)
    return user, _issue(session, user, auth_session, settings)


def sign_out(
    session: Session, *, session_id: str | None, refresh_token: str | None = None, client_ip: str = ""
) -> bool:
    """End the session named by the access token or, if that is gone, by the refresh token: its access
    tokens stop working on the next call. False when there was no live session to end."""
    if session_id is None and refresh_token:
        stored = repository.refresh_token_by_hash(session, _hash_token(refresh_token))
        session_id = stored.session_id if stored else None
    if session_id is None:
        return False
    auth_session = repository.session_by_id(session, session_id)
    if auth_session is None or not repository.end_session(session, session_id, utcnow(), "logout"):
        return False
    audit(
        session,
        AuditKind.SIGN_OUT,
        actor_id=auth_session.user_id,
        user_id=auth_session.user_id,
        client_ip=client_ip,
        session_id=session_id,
    )
    return True


def change_password(
    session: Session,
    caller: Principal,
    body: PasswordChangeBody,
    settings: GatewaySettings,
    *,
    client_ip: str = "",
    user_agent: str = "",
) -> tuple[User, SessionTokens]:
    """A new password, after the current one: every session of the user ends (a thief signed in elsewhere
    is out), and the caller goes on in a new one (its tokens are returned)."""
    user = account_of(session, caller)
    check_sign_in_rate(settings, user.email, client_ip)  # no guessing the current password through here
    try:
        valid = bool(user.password_hash) and password_hash.verify(body.current_password, user.password_hash)
    except UnknownHashError:
        valid = False
    if not valid:
        raise ApiError(
            422,
            "validation_error",
            "現在のパスワードが正しくありません（current_password）",
            "The current password is wrong (current_password)",
            [FieldError("current_password", "現在のパスワードが正しくありません", "Wrong current password")],
        )
    user.password_hash = password_hash.hash(body.new_password)
    session.add(user)
    ended = repository.end_sessions_of(session, user.id, utcnow(), "password_changed")
    audit(session, AuditKind.PASSWORD_CHANGED, actor_id=user.id, user_id=user.id, client_ip=client_ip, ended=ended)
    return user, start_session(session, user, settings, method="password", client_ip=client_ip, user_agent=user_agent)


# --- what admins do to accounts -----------------------------------------------------------------------------


def _user_for_admin(session: Session, user_id: str) -> User:
    user = repository.user_by_id(session, user_id)
    if user is None:
        raise not_found("利用者", "User")
    return user


def block(session: Session, admin: Principal, user_id: str, reason: str, *, client_ip: str = "") -> User:
    """Block an account: it cannot sign in, and every session it has ends now."""
    user = _user_for_admin(session, user_id)
    if user.id == admin.sub:
        raise ApiError(409, "cannot_block_self", "自分自身は停止できません", "You cannot block your own account")
    user.active = False
    session.add(user)
    ended = repository.end_sessions_of(session, user.id, utcnow(), "blocked")
    audit(
        session, AuditKind.BLOCKED, actor_id=admin.sub, user_id=user.id, client_ip=client_ip, reason=reason, ended=ended
    )
    return user


def unblock(session: Session, admin: Principal, user_id: str, *, client_ip: str = "") -> User:
    user = _user_for_admin(session, user_id)
    user.active = True
    session.add(user)
    audit(session, AuditKind.UNBLOCKED, actor_id=admin.sub, user_id=user.id, client_ip=client_ip)
    return user


def update_user(session: Session, admin: Principal, user_id: str, body: UserUpdate, *, client_ip: str = "") -> User:
    """An admin changes an account's name, role or prefectures (only what is sent). A role change is
    audited and applies on the caller's next call (the role is read from the account on every call)."""
    user = _user_for_admin(session, user_id)
    changes = body.model_dump(exclude_unset=True)
    for name in ("display_name", "role", "prefectures"):
        if name in changes and changes[name] is None:
            raise ApiError(
                422,
                "validation_error",
                f"入力内容に誤りがあります（{name}）",
                f"Invalid input ({name})",
                [FieldError(name, "空にはできません", "Cannot be empty")],
            )
    role = changes.get("role", user.role)
    prefectures = changes.get("prefectures", user.prefectures if Role(role) in REGIONAL_ROLES else [])
    _require_prefectures(role, prefectures)
    if user.id == admin.sub and role != Role.ADMIN:
        raise ApiError(
            409, "cannot_demote_self", "自分自身の管理者権限は外せません", "You cannot take your own admin role away"
        )
    before = {"role": user.role, "prefectures": list(user.prefectures)}
    if "display_name" in changes:
        user.display_name = changes["display_name"]
    user.role = role
    user.prefectures = prefectures if Role(role) in REGIONAL_ROLES else []
    session.add(user)
    after = {"role": user.role, "prefectures": list(user.prefectures)}
    if before != after:
        audit(
            session,
            AuditKind.ROLE_CHANGED,
            actor_id=admin.sub,
            user_id=user.id,
            client_ip=client_ip,
            before=before,
            after=after,
        )
    return user


def users_page(
    session: Session, *, limit: int, offset: int, role: str | None = None, active: bool | None = None
) -> tuple[list[AdminUserRead], int]:
    users, total = repository.users_page(session, limit=limit, offset=offset, role=role, active=active)
    return [to_admin_read(user) for user in users], total


def audit_page(session: Session, *, limit: int, offset: int, **filters: Any) -> AuditPage:
    events, total = repository.audit_page(session, limit=limit, offset=offset, **filters)
    items = [
        AuditEventRead(
            id=event.id,
            at=_aware(event.at),
            kind=AuditKind(event.kind),
            actor_id=event.actor_id,
            user_id=event.user_id,
            target=event.target,
            client_ip=event.client_ip,
            details=event.details,
        )
        for event in events
    ]
    return AuditPage(items=items, total=total, limit=limit, offset=offset)


# --- retention: what the gateway forgets (``tsunagu gateway prune``, the CronJob gateway-prune) --------------

# Rows deleted per transaction: the first run on a large backlog commits as it goes instead of holding one
# long transaction (and stays under SQLite's limit on bound parameters).
PRUNE_BATCH = 500


@dataclass(frozen=True)
class PruneReport:
    sessions: int
    refresh_tokens: int
    audit_events: int


def prune(
    session: Session, settings: SessionSettings, *, now: datetime | None = None, batch: int = PRUNE_BATCH
) -> PruneReport:
    """Delete what the gateway no longer needs, committing each batch (unlike the functions above, whose
    caller commits: this is a job, and a half-done prune is simply continued by the next run):

    - sessions ended more than ``session_retention_days`` ago, with their refresh tokens. A session that
      nobody ended counts as ended when it ran out: idle for ``session_idle_days`` or older than
      ``session_max_days`` (the same limits ``refresh`` enforces);
    - audit entries older than ``audit_retention_days``."""
    now = now or utcnow()
    kept_after = now - timedelta(days=settings.session_retention_days)
    sessions = tokens = audits = 0
    while True:
        deleted, deleted_tokens = repository.prune_sessions(
            session,
            ended_before=kept_after,
            idle_before=kept_after - timedelta(days=settings.session_idle_days),
            started_before=kept_after - timedelta(days=settings.session_max_days),
            limit=batch,
        )
        session.commit()
        sessions, tokens = sessions + deleted, tokens + deleted_tokens
        if deleted < batch:
            break
    audit_before = now - timedelta(days=settings.audit_retention_days)
    while True:
        deleted = repository.prune_audit_events(session, before=audit_before, limit=batch)
        session.commit()
        audits += deleted
        if deleted < batch:
            break
    return PruneReport(sessions=sessions, refresh_tokens=tokens, audit_events=audits)
