"""Accounts: sign-up, sign-in (Argon2 password hashes via pwdlib), tokens for the API."""

from __future__ import annotations

from pwdlib import PasswordHash
from sqlmodel import Session, select

from gateway.users.models import User
from gateway.users.schemas import AdminCreateUserBody, RegisterBody, UserRead
from tsunagu.auth import Principal, Role
from tsunagu.errors import ApiError

password_hash = PasswordHash.recommended()
# Verifying against a fixed hash when the e-mail is unknown keeps sign-in time the same either way.
_DUMMY_HASH = password_hash.hash("tsunagu-timing-equaliser")

API_AUDIENCE = "tsunagu-api"


def to_read(user: User) -> UserRead:
    return UserRead(id=user.id, email=user.email, display_name=user.display_name, role=user.role, prefectures=user.prefectures)


def principal_of(user: User) -> Principal:
    return Principal(sub=user.id, role=Role(user.role), name=user.display_name, prefectures=user.prefectures)


def _create(session: Session, *, email: str, password: str, display_name: str, role: str, prefectures: list[str]) -> User:
    if session.exec(select(User).where(User.email == email)).first() is not None:
        raise ApiError(
            409,
            "email_taken",
            "このメールアドレスは既に登録されています",
            "This e-mail address is already registered",
            [{"field": "email", "message_ja": "登録済みです", "message_en": "Already registered"}],
        )
    user = User(email=email, password_hash=password_hash.hash(password), display_name=display_name, role=role, prefectures=prefectures)
    session.add(user)
    return user


def register(session: Session, body: RegisterBody) -> User:
    return _create(session, email=body.email, password=body.password, display_name=body.display_name, role=body.role, prefectures=[])


def admin_create(session: Session, body: AdminCreateUserBody) -> User:
    if body.role in ("broker", "hub") and not body.prefectures:
        raise ApiError(
            422,
            "validation_error",
            "支援機関・ハブの担当者には担当都道府県が必要です（prefectures）",
            "Brokers and hub staff need their prefectures (prefectures)",
            [{"field": "prefectures", "message_ja": "1つ以上指定してください", "message_en": "Give at least one"}],
        )
    return _create(session, email=body.email, password=body.password, display_name=body.display_name, role=body.role, prefectures=body.prefectures)


def authenticate(session: Session, email: str, password: str) -> User:
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None or not user.active:
        password_hash.verify(password, _DUMMY_HASH)
        user = None
    elif not password_hash.verify(password, user.password_hash):
        user = None
    if user is None:
        raise ApiError(401, "invalid_credentials", "メールアドレスまたはパスワードが正しくありません", "Wrong e-mail address or password")
    return user


def ensure_user(session: Session, *, email: str, password: str, display_name: str, role: str, prefectures: list[str] | None = None) -> User:
    """Create the account if it does not exist yet (bootstrap of the first admin, demo accounts)."""
    existing = session.exec(select(User).where(User.email == email.lower())).first()
    if existing is not None:
        return existing
    return _create(session, email=email.lower(), password=password, display_name=display_name, role=role, prefectures=prefectures or [])
