"""Sign-up, sign-in and the caller's own account; admins create brokers, hubs and other admins."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from gateway.security import SESSION_COOKIE, require_admin, require_user
from gateway.users import service
from gateway.users.models import User
from gateway.users.schemas import (
    AdminCreateUserBody,
    LoginBody,
    RegisterBody,
    TokenResponse,
    UserRead,
)
from tsunagu.auth import Principal, issue_token
from tsunagu.db import session_scope
from tsunagu.errors import ApiError, not_found

router = APIRouter(prefix="/api/v1", tags=["auth"])
_limiter = MovingWindowRateLimiter(MemoryStorage())


def _check_rate(request: Request, email: str) -> None:
    settings = request.app.state.settings
    client = request.client.host if request.client else "unknown"
    for limit, key in (
        (parse(settings.login_rate_limit), f"login:email:{email.lower()}"),
        (parse(settings.login_rate_limit_per_client), f"login:client:{client}"),
    ):
        if not _limiter.hit(limit, key):
            raise ApiError(429, "too_many_requests", "ログイン試行が多すぎます。しばらく待ってから再度お試しください", "Too many sign-in attempts; wait a little")


@router.post("/auth/register", status_code=201, response_model=UserRead)
def register(body: RegisterBody, request: Request) -> UserRead:
    with session_scope(request.app.state.engine) as session:
        return service.to_read(service.register(session, body))


@router.post("/auth/token", response_model=TokenResponse)
def token(body: LoginBody, request: Request, response: Response) -> TokenResponse:
    _check_rate(request, body.email)
    settings = request.app.state.settings
    with session_scope(request.app.state.engine) as session:
        user = service.authenticate(session, body.email, body.password)
        ttl = settings.access_token_minutes * 60
        access = issue_token(service.principal_of(user), secret=settings.token_secret, audience=service.API_AUDIENCE, ttl_seconds=ttl)
        # The same token as an HttpOnly cookie, for the web UI (SameSite=Lax blocks cross-site posts).
        response.set_cookie(SESSION_COOKIE, access, max_age=ttl, httponly=True, samesite="lax", secure=settings.env == "production")
        return TokenResponse(access_token=access, expires_in=ttl, user=service.to_read(user))


@router.post("/auth/logout", status_code=204)
def logout(response: Response) -> Response:
    response.delete_cookie(SESSION_COOKIE)
    response.status_code = 204
    return response


@router.get("/auth/me", response_model=UserRead)
def me(request: Request, principal: Principal = Depends(require_user)) -> UserRead:
    with session_scope(request.app.state.engine) as session:
        user = session.get(User, principal.sub)
        if user is None:
            raise not_found("利用者", "User")
        return service.to_read(user)


@router.post("/admin/users", status_code=201, response_model=UserRead)
def admin_create_user(body: AdminCreateUserBody, request: Request, _admin: Principal = Depends(require_admin)) -> UserRead:
    with session_scope(request.app.state.engine) as session:
        return service.to_read(service.admin_create(session, body))
