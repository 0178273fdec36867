"""Sign-up, sign-in (JSON or the OAuth 2 password form), refresh, sign-out, password change and the caller's
own account; what admins do to accounts (create, list, change role, block, unblock). The rules are in
``gateway.service``; these routes read the request, commit and set or clear the browser's cookies."""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from gateway import security, service
from gateway.deps import AdminUserDep, CurrentUserDep, SettingsDep
from gateway.schemas import (
    AdminCreateUserBody,
    AdminUserPage,
    AdminUserRead,
    BlockBody,
    LoginBody,
    PasswordChangeBody,
    PasswordForm,
    RefreshBody,
    RegisterBody,
    TokenResponse,
    UserRead,
    UserUpdate,
)
from gateway.settings import REFRESH_COOKIE
from tsunagu.deps import PageDep, SessionDep
from tsunagu.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["auth"])

_FORM = "application/x-www-form-urlencoded"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:300]


async def login_credentials(request: Request) -> LoginBody:
    """The sign-in's e-mail and password from a JSON body (``email``, ``password``) or from the OAuth 2
    password form (``username``, ``password``, optionally ``grant_type=password``)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in (_FORM, "multipart/form-data"):
        form = await request.form()
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        credentials = PasswordForm.model_validate(values)
        return LoginBody(email=credentials.username, password=credentials.password)
    return LoginBody.model_validate_json(await request.body() or b"null")


LoginCredentials = Annotated[LoginBody, Depends(login_credentials)]

_TOKEN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginBody.model_json_schema()},
            _FORM: {"schema": PasswordForm.model_json_schema()},
        },
    }
}


@router.post("/auth/register", status_code=201)
def register(body: RegisterBody, request: Request, session: SessionDep, settings: SettingsDep) -> UserRead:
    user = service.register(session, body, settings=settings, client_ip=client_ip(request))
    session.commit()
    return service.to_read(user)


@router.post("/auth/token", openapi_extra=_TOKEN_BODY)
def token(
    credentials: LoginCredentials, request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> TokenResponse:
    """Sign in with e-mail and password: JSON ``{"email", "password"}`` or the OAuth 2 password form
    (``application/x-www-form-urlencoded``: ``grant_type=password&username=...&password=...``). Answers a
    15-minute access token and a refresh token (``POST /api/v1/auth/refresh``), and sets both as HttpOnly
    cookies for the web UI. Rate-limited per account and per client (429 with Retry-After)."""
    user, tokens = service.sign_in(
        session, credentials.email, credentials.password, client_ip(request), settings, user_agent=_user_agent(request)
    )
    session.commit()
    security.set_session_cookies(response, tokens, settings)
    return service.token_response(user, tokens)


@router.post("/auth/refresh")
def refresh(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[RefreshBody | None, Body()] = None,
) -> TokenResponse:
    """New tokens for the refresh token (in the body, or the web UI's cookie). Each refresh token works
    once; one used twice ends its session (someone copied it)."""
    refresh_token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    if not refresh_token:
        raise ApiError(
            401,
            "invalid_refresh_token",
            "再度ログインしてください",
            "No refresh token; sign in again",
        )
    user, tokens = service.refresh(session, refresh_token, settings, client_ip=client_ip(request))
    session.commit()
    if body is None or not body.refresh_token:
        security.set_session_cookies(response, tokens, settings)  # the browser refreshed by cookie
    return service.token_response(user, tokens)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, response: Response, session: SessionDep, settings: SettingsDep) -> Response:
    """End the caller's session (named by the access token, or by the refresh cookie when the access token
    has expired): its tokens stop working at once. The cookies are cleared either way."""
    # An ended or bad token names nothing to end; the refresh cookie may still name the session.
    with suppress(ApiError):
        security.client_principal(request, settings)
    service.sign_out(
        session,
        session_id=security.current_session_id(request),
        refresh_token=request.cookies.get(REFRESH_COOKIE),
        client_ip=client_ip(request),
    )
    session.commit()
    security.clear_session_cookies(response)
    response.status_code = 204
    return response


@router.get("/auth/me")
def me(session: SessionDep, user: CurrentUserDep) -> UserRead:
    return service.to_read(service.account_of(session, user))


@router.post("/auth/password")
def change_password(
    body: PasswordChangeBody,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    caller: CurrentUserDep,
) -> TokenResponse:
    """Change the caller's password: every session of the account ends (on every device), and the answer
    carries the tokens of a new one for the caller (also as cookies when the caller used them)."""
    user, tokens = service.change_password(
        session, caller, body, settings, client_ip=client_ip(request), user_agent=_user_agent(request)
    )
    session.commit()
    if "authorization" not in request.headers:
        security.set_session_cookies(response, tokens, settings)
    return service.token_response(user, tokens)


UserId = Annotated[str, Path(max_length=64)]


@router.post("/admin/users", status_code=201, tags=["admin"])
def admin_create_user(
    body: AdminCreateUserBody, request: Request, session: SessionDep, admin: AdminUserDep
) -> UserRead:
    user = service.admin_create(session, body, admin)
    session.commit()
    return service.to_read(user)


@router.get("/admin/users", tags=["admin"])
def admin_list_users(
    session: SessionDep,
    _admin: AdminUserDep,
    page: PageDep,
    role: Annotated[str | None, Query(max_length=20)] = None,
    active: bool | None = None,
) -> AdminUserPage:
    """Accounts, newest first; ``role`` and ``active`` (false: the blocked ones) filter."""
    items, total = service.users_page(session, limit=page.limit, offset=page.offset, role=role, active=active)
    return AdminUserPage(items=items, total=total, limit=page.limit, offset=page.offset)


@router.patch("/admin/users/{user_id}", tags=["admin"])
def admin_update_user(
    user_id: UserId, body: UserUpdate, request: Request, session: SessionDep, admin: AdminUserDep
) -> AdminUserRead:
    """Change an account's name, role or prefectures (audited; applies on the account's next call)."""
    user = service.update_user(session, admin, user_id, body, client_ip=client_ip(request))
    session.commit()
    return service.to_admin_read(user)


@router.post("/admin/users/{user_id}/block", tags=["admin"])
def admin_block_user(
    user_id: UserId,
    request: Request,
    session: SessionDep,
    admin: AdminUserDep,
    body: Annotated[BlockBody | None, Body()] = None,
) -> AdminUserRead:
    """Block an account: it can no longer sign in and every session it has ends now."""
    user = service.block(session, admin, user_id, body.reason if body else "", client_ip=client_ip(request))
    session.commit()
    return service.to_admin_read(user)


@router.post("/admin/users/{user_id}/unblock", tags=["admin"])
def admin_unblock_user(user_id: UserId, request: Request, session: SessionDep, admin: AdminUserDep) -> AdminUserRead:
    user = service.unblock(session, admin, user_id, client_ip=client_ip(request))
    session.commit()
    return service.to_admin_read(user)
