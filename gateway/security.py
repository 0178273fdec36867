"""Who is calling the public API: the bearer token the gateway issued at sign-in (audience tsunagu-api)."""

from __future__ import annotations

from fastapi import Request

from gateway.users.service import API_AUDIENCE
from tsunagu.auth import ANONYMOUS, Principal, Role, verify_token
from tsunagu.errors import ApiError, forbidden

SESSION_COOKIE = "tsunagu_session"


def current_principal(request: Request) -> Principal:
    settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    token = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "invalid_token", "認証ヘッダーの形式が正しくありません", "Malformed Authorization header")
    else:
        token = request.cookies.get(SESSION_COOKIE)  # the web UI signs in with an HttpOnly cookie
    if not token:
        return ANONYMOUS
    return verify_token(token, secret=settings.token_secret, audience=API_AUDIENCE)


def require_user(request: Request) -> Principal:
    principal = current_principal(request)
    if principal.role == Role.ANONYMOUS:
        raise ApiError(401, "unauthorized", "ログインが必要です", "Authentication required")
    return principal


def require_admin(request: Request) -> Principal:
    principal = require_user(request)
    if principal.role != Role.ADMIN:
        raise forbidden("管理者のみが行えます", "Admins only")
    return principal
