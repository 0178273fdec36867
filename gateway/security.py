"""Who is calling the public API, and the tokens and cookies that say so.

A sign-in starts a server-side session (``gateway.models.AuthSession``). The client holds a short-lived
access token (audience ``tsunagu-api``) that names the session (``sid``), sent as a bearer token by API
clients or as the HttpOnly session cookie by the web UI, and a refresh token (opaque, rotated on use) that
gets the next access token. Every call looks the session and its account up: a logout, a password change or
an admin's block ends the session, and its access token stops working on the next call, not when it
expires; a role change applies at once too, since the caller's role is read from the account, not the token.

Services never see this token: the proxy signs a 60-second token per call, whose audience is the target
service (``upstream_token``).

Speed (issue 13): the live-session lookup is remembered per session for ``SESSION_CACHE_SECONDS`` (2 s), and
forgotten at once whenever this process commits a change to an account or a session (a logout, a password
change, a block, a role change, a sign-in: ``_forget_on_commit``). So a logout still ends its token on the
very next call here; another gateway replica follows within the two seconds. ``client_principal_async``
answers from that memory on the event loop and goes to a worker thread only for the database.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import Request, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from gateway import repository
from gateway.keys import signing_keys
from gateway.models import AuthSession, User
from gateway.schemas import SessionTokens
from gateway.settings import (
    API_AUDIENCE,
    REFRESH_COOKIE,
    REFRESH_COOKIE_PATH,
    SESSION_COOKIE,
    GatewaySettings,
)
from tsunagu.auth import ANONYMOUS, Principal, Role, issue_token
from tsunagu.errors import ApiError

UPSTREAM_TOKEN_SECONDS = 60
CLIENT_TOKEN_ALGORITHM = "HS256"  # noqa: S105 - verified only by the gateway itself, with a key only the gateway holds
CLIENT_TOKEN_ISSUER = "tsunagu-gateway"  # noqa: S105 - a name, not a secret


def principal_of(user: User) -> Principal:
    """Who an account is for the rest of the system (read from the account on every call)."""
    return Principal(sub=user.id, role=Role(user.role), name=user.display_name, prefectures=user.prefectures)


def _client_key(settings: GatewaySettings) -> OctKey:
    return OctKey.import_key(settings.token_secret.encode())


def issue_access_token(user: User, session_id: str, settings: GatewaySettings) -> tuple[str, int]:
    """A client's access token for one session, and its lifetime in seconds."""
    ttl = settings.access_token_minutes * 60
    now = int(time.time())
    claims = {
        "iss": CLIENT_TOKEN_ISSUER,
        "aud": API_AUDIENCE,
        "iat": now,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
        "sid": session_id,
        **principal_of(user).model_dump(mode="json"),
    }
    header = {"alg": CLIENT_TOKEN_ALGORITHM, "typ": "JWT"}
    return jwt.encode(header, claims, _client_key(settings), algorithms=[CLIENT_TOKEN_ALGORITHM]), ttl


def _unauthorized(code: str = "invalid_token") -> ApiError:
    if code == "session_ended":
        return ApiError(
            401,
            code,
            "ログインの有効期限が切れました。再度ログインしてください",
            "The session has ended; sign in again",
        )
    return ApiError(401, code, "認証情報が無効です。再度ログインしてください", "Invalid or expired token")


def access_token_claims(token: str, settings: GatewaySettings) -> dict[str, Any]:
    """The verified claims of a client access token (signature, algorithm, issuer, audience, expiry, the
    session id); 401 otherwise. Whether the session is still live is ``caller_of_token``'s question."""
    try:
        decoded = jwt.decode(token, _client_key(settings), algorithms=[CLIENT_TOKEN_ALGORITHM])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": CLIENT_TOKEN_ISSUER},
            aud={"essential": True, "value": API_AUDIENCE},
            exp={"essential": True},
            sub={"essential": True},
            sid={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as error:
        raise _unauthorized() from error
    return decoded.claims


# session id -> (the caller, its account id, until when (monotonic) this may be answered without the database)
_live_sessions: dict[str, tuple[Principal, str, float]] = {}
SESSION_CACHE_SECONDS = 2.0
SESSION_CACHE_SIZE = 50_000
# Bumped by every forgetting: a lookup that began before a logout committed must not remember what it read.
_generation = [0]


def forget_sessions() -> None:
    """Forget every remembered live session: the next call of each reads its session and account again."""
    _generation[0] += 1
    _live_sessions.clear()


def _remembered(claims: dict[str, Any]) -> Principal | None:
    hit = _live_sessions.get(str(claims["sid"]))
    if hit is None or hit[2] < time.monotonic() or hit[1] != claims["sub"]:
        return None
    return hit[0]


def _remember(session_id: str, principal: Principal, user_id: str, generation: int) -> None:
    if generation != _generation[0]:
        return  # an account or session changed while this one was read: read it again next time
    if len(_live_sessions) >= SESSION_CACHE_SIZE:
        _live_sessions.clear()  # bounded; a cold entry costs one query
    _live_sessions[session_id] = (principal, user_id, time.monotonic() + SESSION_CACHE_SECONDS)


@event.listens_for(OrmSession, "after_flush")
def _accounts_flushed(session: OrmSession, _context: object) -> None:
    if any(isinstance(row, User | AuthSession) for row in (*session.new, *session.dirty, *session.deleted)):
        session.info["tsunagu_auth_changed"] = True


@event.listens_for(OrmSession, "do_orm_execute")
def _accounts_updated(state: ORMExecuteState) -> None:
    # Bulk UPDATE/DELETE statements (ending every session of an account) do not pass through the flush.
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper is not None and mapper.class_ in (User, AuthSession):
        state.session.info["tsunagu_auth_changed"] = True


@event.listens_for(OrmSession, "after_commit")
def _forget_on_commit(session: OrmSession) -> None:
    if session.info.pop("tsunagu_auth_changed", False):
        forget_sessions()


@event.listens_for(OrmSession, "after_rollback")
def _nothing_changed(session: OrmSession) -> None:
    session.info.pop("tsunagu_auth_changed", None)


def caller_of_token(session: Session, token: str, settings: GatewaySettings) -> tuple[Principal, str]:
    """The caller an access token stands for, read from its live session's account, and the session id;
    401 when the token is bad or its session has ended or its account is blocked."""
    claims = access_token_claims(token, settings)
    remembered = _remembered(claims)
    if remembered is not None:
        return remembered, str(claims["sid"])
    generation = _generation[0]
    found = repository.live_session_and_user(session, str(claims["sid"]))
    if found is None:
        raise _unauthorized("session_ended")
    _auth_session, user = found
    if not user.active or user.id != claims["sub"]:
        raise _unauthorized("session_ended")
    principal = principal_of(user)
    _remember(str(claims["sid"]), principal, user.id, generation)
    return principal, str(claims["sid"])


def _engine(request: Request):
    return request.app.state.runtime.engine


def client_principal(request: Request, settings: GatewaySettings) -> Principal:
    """The verified caller, or the anonymous principal when neither a bearer token nor the cookie is sent.

    A bad bearer token is a 401 (an API client must know). A session cookie that is expired, ended or bad
    makes the caller anonymous instead (a browser keeps reading public pages; what needs a sign-in answers
    401 or sends it to /login). Computed once per request (``request.state.caller``)."""
    cached = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    token, from_cookie = _token_of(request)
    principal, session_id = ANONYMOUS, None
    if token:
        try:
            with Session(_engine(request)) as session:
                principal, session_id = caller_of_token(session, token, settings)
        except ApiError:
            if not from_cookie:
                raise
    request.state.caller = principal
    request.state.session_id = session_id
    return principal


def _token_of(request: Request) -> tuple[str, bool]:
    """The access token sent (bearer header, else the web UI's HttpOnly cookie) and whether it came as the
    cookie; a malformed Authorization header is a 401."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401, "invalid_token", "認証ヘッダーの形式が正しくありません", "Malformed Authorization header"
            )
        return token, False
    return request.cookies.get(SESSION_COOKIE, ""), True


async def client_principal_async(request: Request, settings: GatewaySettings) -> Principal:
    """``client_principal`` for async code: answered on the event loop when the caller is anonymous or their
    live session is remembered (most calls); only a lookup in the database goes to a worker thread."""
    cached = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    token, from_cookie = _token_of(request)
    claims = None
    if token:
        try:
            claims = access_token_claims(token, settings)
        except ApiError:
            if not from_cookie:
                raise
    if claims is None:  # anonymous, or a browser whose cookie is no longer good
        request.state.caller, request.state.session_id = ANONYMOUS, None
        return ANONYMOUS
    remembered = _remembered(claims)
    if remembered is None:
        return await run_in_threadpool(client_principal, request, settings)
    request.state.caller, request.state.session_id = remembered, str(claims["sid"])
    return remembered


def current_session_id(request: Request) -> str | None:
    """The session of this request's caller (after ``client_principal`` ran), or None if anonymous."""
    return getattr(request.state, "session_id", None)


def set_session_cookies(response: Response, tokens: SessionTokens, settings: GatewaySettings) -> None:
    """Put a sign-in's tokens in the browser: HttpOnly (no script reads them), SameSite=Lax (no cross-site
    POST carries them), Secure in production (never over plain HTTP). The access cookie lives as long as
    its token; the refresh cookie as long as the session may stay idle."""
    secure = settings.env == "production"
    response.set_cookie(
        SESSION_COOKIE,
        tokens.access_token,
        max_age=tokens.expires_in,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.set_cookie(
        REFRESH_COOKIE,
        tokens.refresh_token,
        max_age=tokens.refresh_expires_in,
        path=REFRESH_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def clear_session_cookies(response: Response) -> None:
    """Drop both cookies from the browser (logout, or a session found ended)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, httponly=True, samesite="lax")


# Upstream tokens are reused for the calls of one caller to one service while more than half their life is
# left: the service verifies each token's signature once (tsunagu.auth.PublicKeys remembers it), not per call.
_upstream_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
UPSTREAM_TOKEN_CACHE_SIZE = 10_000


def upstream_token(principal: Principal, settings: GatewaySettings, service: str) -> str:
    """A short-lived token for calls to one service (its audience is that service), signed with the
    gateway's private key (gateway/keys.py); services verify it with the published public key."""
    keys = signing_keys(settings)
    cache_key = (principal.model_dump_json(), service, keys.keys[0].kid or "")
    now = time.time()
    cached = _upstream_tokens.get(cache_key)
    if cached is not None and cached[1] - now > UPSTREAM_TOKEN_SECONDS / 2:
        return cached[0]
    token = issue_token(principal, keys=keys, audience=service, ttl_seconds=UPSTREAM_TOKEN_SECONDS)
    if len(_upstream_tokens) >= UPSTREAM_TOKEN_CACHE_SIZE:
        _upstream_tokens.clear()
    _upstream_tokens[cache_key] = (token, now + UPSTREAM_TOKEN_SECONDS)
    return token
