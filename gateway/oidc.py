"""Sign-in through an organisation's OpenID Connect provider (a chamber of commerce's or a prefecture's
identity system), with Authlib's client: discovery, the authorization code flow with PKCE (S256), and the
checks that make it safe:

- ``state``: random, kept server-side (``OidcLogin``, used once, 10 minutes) *and* in a cookie of the browser
  that started the sign-in; the callback must bring the same value back in both, so nobody can make another
  person's browser finish a sign-in they started (login CSRF), and a callback cannot be replayed.
- ``nonce``: random, sent in the request; the ID token must carry it (Authlib's ``CodeIDToken`` checks it with
  the issuer, the audience = our client id, expiry and ``at_hash``). The ID token's signature is checked
  against the provider's JWKS (fetched from discovery, again when a new key id appears), only with
  asymmetric algorithms.
- PKCE: the verifier stays on the server; the provider gets only its S256 challenge.

The first sign-in links the provider's subject to the account with the same e-mail address, only if the
provider says that address is verified (otherwise anyone who can name an address at some provider could
take the account over), or creates an account with the role the admin mapped for that provider. Later
sign-ins go by the subject. A blocked account cannot sign in this way either.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlmodel import Session

from gateway import repository, service
from gateway.models import OidcIdentity, OidcLogin, User
from gateway.schemas import AuditKind, SessionTokens, normalize_identifier
from gateway.settings import GatewaySettings, OidcProvider
from tsunagu.db import utcnow
from tsunagu.errors import ApiError, not_found

LOGIN_VALID_FOR = timedelta(minutes=10)
DISCOVERY_TTL_SECONDS = 3600
HTTP_TIMEOUT_SECONDS = 10.0
# Asymmetric only: an ID token "signed" with our client secret (HS256) or "none" is refused.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")

_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks: dict[str, dict[str, Any]] = {}


def _refused(code: str, message_ja: str, message_en: str, status: int = 400) -> ApiError:
    return ApiError(status, code, message_ja, message_en)


def provider_of(settings: GatewaySettings, name: str) -> OidcProvider:
    provider = settings.oidc_providers.get(name)
    if provider is None:
        raise not_found("ログイン連携先", "Sign-in provider")
    return provider


def redirect_uri(settings: GatewaySettings, name: str) -> str:
    """Where the provider sends the browser back (registered with the provider as the redirect URI)."""
    return f"{settings.public_url.rstrip('/')}/auth/oidc/{name}/callback"


def safe_return_to(target: str | None) -> str:
    """Only a path of this site (never ``//host``, a scheme or a backslash): no open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target and len(target) <= 500:
        return target
    return "/"


def _http() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS)


async def discover(provider: OidcProvider) -> dict[str, Any]:
    """The provider's metadata (``/.well-known/openid-configuration``), cached for an hour. Its ``issuer``
    must be the configured one exactly (OpenID Connect Discovery 4.3)."""
    cached = _discovery.get(provider.issuer)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        async with _http() as http:
            response = await http.get(url)
            response.raise_for_status()
            metadata = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise _refused(
            "oidc_unavailable",
            "連携先のログインサービスに接続できません。しばらくしてから再度お試しください",
            "The sign-in provider cannot be reached",
            503,
        ) from error
    if metadata.get("issuer") != provider.issuer:
        raise _refused(
            "oidc_misconfigured",
            "連携先の設定が正しくありません（issuer）",
            "The provider's discovery document names another issuer",
            502,
        )
    _discovery[provider.issuer] = (time.monotonic() + DISCOVERY_TTL_SECONDS, metadata)
    return metadata


async def _key_set(metadata: dict[str, Any], *, force: bool = False) -> KeySet:
    uri = metadata["jwks_uri"]
    if force or uri not in _jwks:
        async with _http() as http:
            response = await http.get(uri)
            response.raise_for_status()
            _jwks[uri] = response.json()
    return KeySet.import_key_set(_jwks[uri])


def _client(provider: OidcProvider, metadata: dict[str, Any], callback: str) -> AsyncOAuth2Client:
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
    return AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=provider.scope,
        redirect_uri=callback,
        code_challenge_method="S256",
        token_endpoint_auth_method=method,
        timeout=HTTP_TIMEOUT_SECONDS,
    )


@dataclass
class Authorization:
    """A sign-in about to start: the provider's URL to send the browser to, and the pending login."""

    url: str
    login: OidcLogin


async def begin(settings: GatewaySettings, name: str, return_to: str | None) -> Authorization:
    """Prepare the authorization request: state, nonce and PKCE verifier (the caller stores the login and
    sets the state cookie)."""
    provider = provider_of(settings, name)
    metadata = await discover(provider)
    login = OidcLogin(
        state=secrets.token_urlsafe(32),
        provider=name,
        nonce=secrets.token_urlsafe(32),
        code_verifier=generate_token(64),
        return_to=safe_return_to(return_to),
    )
    async with _client(provider, metadata, redirect_uri(settings, name)) as client:
        url, _state = client.create_authorization_url(
            metadata["authorization_endpoint"], state=login.state, code_verifier=login.code_verifier, nonce=login.nonce
        )
    return Authorization(url=url, login=login)


def store_login(session: Session, settings: GatewaySettings, login: OidcLogin, client_ip: str) -> None:
    """Keep a pending sign-in. Starting one is a sign-in attempt: counted against the per-client sign-in
    limit (each start writes a row), and rows past their ten minutes are pruned."""
    service.check_oidc_start_rate(settings, client_ip)
    repository.prune_oidc_logins(session, utcnow() - LOGIN_VALID_FOR)
    repository.add_oidc_login(session, login)


def take_login(session: Session, name: str, state: str | None, cookie_state: str | None) -> OidcLogin:
    """The pending login this callback finishes: the state in the URL must be the one in this browser's
    cookie and a stored, unused, recent one of this provider. Used up here (no replay)."""
    if not state or not cookie_state or not hmac.compare_digest(state.encode(), cookie_state.encode()):
        raise _refused(
            "oidc_state_mismatch",
            "ログインを確認できませんでした。もう一度最初からお試しください（state）",
            "The sign-in could not be matched to this browser (state); start again",
        )
    login = repository.use_oidc_login(session, state, utcnow())
    created = login.created_at if login is not None else None
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=utcnow().tzinfo)
    if login is None or login.provider != name or created is None or utcnow() - created > LOGIN_VALID_FOR:
        raise _refused(
            "oidc_state_invalid",
            "ログインの有効期限が切れたか、既に使われています。もう一度最初からお試しください",
            "The sign-in expired or was already used; start again",
        )
    return login


async def exchange(settings: GatewaySettings, login: OidcLogin, code: str) -> dict[str, Any]:
    """Trade the code (with the PKCE verifier) for tokens and return the ID token's verified claims."""
    provider = provider_of(settings, login.provider)
    metadata = await discover(provider)
    try:
        async with _client(provider, metadata, redirect_uri(settings, login.provider)) as client:
            token = await client.fetch_token(
                metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=login.code_verifier,
            )
    except Exception as error:  # Authlib raises OAuthError, httpx its own; either way the code is no good
        raise _refused(
            "oidc_code_refused",
            "連携先でログインを確認できませんでした。もう一度お試しください",
            "The provider refused the authorization code",
        ) from error
    return await _verified_claims(provider, metadata, token, login.nonce)


async def _verified_claims(
    provider: OidcProvider, metadata: dict[str, Any], token: dict[str, Any], nonce: str
) -> dict[str, Any]:
    id_token = token.get("id_token")
    invalid = _refused(
        "oidc_id_token_invalid",
        "連携先からのログイン情報を確認できませんでした",
        "The provider's ID token failed verification",
    )
    if not id_token:
        raise invalid
    offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in offered if alg in ALLOWED_ALGORITHMS]
    registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
    try:
        try:
            decoded = jwt.decode(id_token, await _key_set(metadata), algorithms=algorithms, registry=registry)
        except InvalidKeyIdError:  # the provider rotated its keys
            decoded = jwt.decode(
                id_token, await _key_set(metadata, force=True), algorithms=algorithms, registry=registry
            )
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"essential": True, "value": provider.issuer}},
            {"nonce": nonce, "client_id": provider.client_id, "access_token": token.get("access_token")},
        )
        claims.validate(leeway=60)
    except (JoseError, ValueError, httpx.HTTPError) as error:
        raise invalid from error
    return dict(claims)


def account_for(
    session: Session, name: str, provider: OidcProvider, claims: dict[str, Any], *, client_ip: str = ""
) -> User:
    """The account these verified claims sign in to: the one linked to (provider, sub), else the one with
    the provider-verified e-mail address (linked now), else a new one with the provider's mapped role."""
    subject = str(claims["sub"])
    identity = repository.oidc_identity(session, name, subject)
    user = repository.user_by_id(session, identity.user_id) if identity is not None else None
    if user is None:
        email = normalize_identifier(str(claims.get("email") or ""))
        if not email or claims.get("email_verified") is not True:
            raise _refused(
                "oidc_email_unverified",
                "連携先で確認済みのメールアドレスが必要です",
                "The provider must vouch for the e-mail address (email_verified) at the first sign-in",
                403,
            )
        user = repository.user_by_email(session, email)
        created = user is None
        if user is None:
            display_name = str(claims.get("name") or email.split("@")[0])[:100]
            user = service.create_linked_account(
                session, email=email, display_name=display_name, role=provider.role, prefectures=provider.prefectures
            )
        repository.add_oidc_identity(
            session, OidcIdentity(provider=name, subject=subject, user_id=user.id, email=email)
        )
        service.audit(
            session,
            AuditKind.OIDC_LINKED,
            actor_id=user.id,
            user_id=user.id,
            client_ip=client_ip,
            provider=name,
            subject=subject,
            created=created,
        )
    return user


def sign_in(
    session: Session,
    settings: GatewaySettings,
    login: OidcLogin,
    claims: dict[str, Any],
    *,
    client_ip: str = "",
    user_agent: str = "",
) -> tuple[User, SessionTokens]:
    """Finish the sign-in: the account (linked or created), refused if blocked, and a new session."""
    provider = provider_of(settings, login.provider)
    user = account_for(session, login.provider, provider, claims, client_ip=client_ip)
    if not user.active:
        service.audit(
            session,
            AuditKind.SIGN_IN_FAILED,
            user_id=user.id,
            target=user.email,
            client_ip=client_ip,
            reason="blocked",
            method=f"oidc:{login.provider}",
        )
        session.commit()
        raise _refused("account_blocked", "このアカウントは利用停止中です", "This account is blocked", 403)
    tokens = service.start_session(
        session, user, settings, method=f"oidc:{login.provider}", client_ip=client_ip, user_agent=user_agent
    )
    return user, tokens
