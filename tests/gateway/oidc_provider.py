"""A real OpenID Connect provider of the suite's own, built with Authlib's server components (the
``AuthorizationServer``, ``AuthorizationCodeGrant`` with the ``CodeChallenge`` (PKCE) and ``OpenIDCode``
extensions) on a small Starlette app, run by uvicorn on a free port. It stands for a chamber of commerce's
identity system: discovery, JWKS (an RSA key made at start), a sign-in form, the token endpoint.

Authlib ships server integrations for Flask and Django only, so the few framework methods
(``create_oauth2_request``, ``handle_response``...) are written here for Starlette requests read ahead.

For the tests that check the gateway refuses a bad ID token, ``tamper`` makes the provider misbehave on
purpose: ``"nonce"`` signs a token with another nonce, ``"audience"`` one for another client, ``"signature"``
one signed with a key its JWKS does not hold.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

import uvicorn
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tsunagu.natsserver import free_port

# Authlib's server refuses plain HTTP; the provider listens on 127.0.0.1 for the tests only.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


@dataclass
class ProviderUser:
    sub: str
    email: str
    password: str
    name: str = "連携 太郎"
    email_verified: bool = True


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in ("openid", "email", "profile"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: ProviderUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None


class _Payload(OAuth2Payload):
    def __init__(self, data: dict[str, str]) -> None:
        self._data = data

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        return defaultdict(list, {key: [value] for key, value in self._data.items()})


class _Request(OAuth2Request):
    """A Starlette request whose query and form were read ahead (Authlib's server is synchronous)."""

    def __init__(self, request: Request, query: dict[str, str], form: dict[str, str]) -> None:
        super().__init__(request.method, str(request.url), headers=request.headers)
        self._query, self._form = query, form
        self.payload = _Payload({**query, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class Server(AuthorizationServer):
    def __init__(self, provider: OidcTestProvider) -> None:
        super().__init__(scopes_supported=["openid", "email", "profile"])
        self.provider = provider
        self.register_token_generator("default", BearerTokenGenerator(lambda *_a, **_k: secrets.token_urlsafe(32)))

    def query_client(self, client_id: str) -> Client | None:
        return self.provider.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider.issued_tokens.append(token)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=dict(headers))
        return Response(body, status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012 - Authlib's API

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        provider: OidcTestProvider = self.server.provider  # type: ignore[attr-defined]
        provider.codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.payload.scope,
            user=request.user,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        found = self.server.provider.codes.get(code)  # type: ignore[attr-defined]
        return found if found is not None and found.client_id == client.get_client_id() else None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        self.server.provider.codes.pop(authorization_code.code, None)  # type: ignore[attr-defined]

    def authenticate_user(self, authorization_code: AuthorizationCode) -> ProviderUser:
        return authorization_code.user


class IdToken(OpenIDCode):
    def __init__(self, provider: OidcTestProvider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return any(code.nonce == nonce for code in self.provider.codes.values())

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.provider.rogue_key if self.provider.tamper == "signature" else self.provider.key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        key = self.resolve_client_private_key(client)
        return {"alg": "RS256", "kid": key.kid}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        audience = "someone-else" if self.provider.tamper == "audience" else client.get_client_id()
        return {"iss": self.provider.issuer, "aud": [audience], "exp": int(time.time()) + 300}

    def get_authorization_code_claims(self, authorization_code: AuthorizationCodeMixin) -> dict[str, Any]:
        claims = super().get_authorization_code_claims(authorization_code)
        if self.provider.tamper == "nonce":
            claims["nonce"] = "not-the-nonce-the-gateway-sent"
        return claims

    def generate_user_info(self, user: ProviderUser, scope: str) -> UserInfo:
        return UserInfo(sub=user.sub, name=user.name, email=user.email, email_verified=user.email_verified)


_LOGIN_PAGE = """<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>テスト商工会議所ID</title></head>
<body><h1>テスト商工会議所ID</h1><p class="error">{error}</p>
<form method="post" action="/authorize?{query}">
<label>ID <input name="username" id="username"></label>
<label>パスワード <input name="password" id="password" type="password"></label>
<button type="submit" id="sign-in">ログイン</button></form></body></html>"""


class OidcTestProvider:
    """The provider; ``start()`` serves it on 127.0.0.1 at a free port, ``stop()`` ends it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"})
        self.rogue_key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"})
        self.clients: dict[str, Client] = {}
        self.users: dict[str, ProviderUser] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.issued_tokens: list[dict[str, Any]] = []
        self.authorize_requests: list[dict[str, str]] = []  # what the gateway sent (PKCE, nonce...)
        self.tamper: str | None = None
        self.server = Server(self)
        self.server.register_grant(CodeGrant, [CodeChallenge(required=True), IdToken(self)])
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def add_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        self.clients[client_id] = Client(client_id, client_secret, redirect_uris)

    def add_user(self, email: str, password: str, *, name: str = "連携 太郎", verified: bool = True) -> ProviderUser:
        user = ProviderUser(sub=f"sub-{secrets.token_hex(6)}", email=email, password=password, name=name)
        user.email_verified = verified
        self.users[email] = user
        return user

    # --- endpoints ---------------------------------------------------------------------------------------

    async def discovery(self, _request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": ["openid", "email", "profile"],
            }
        )

    async def jwks(self, _request: Request) -> JSONResponse:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if request.method == "GET":
            self.authorize_requests.append(query)
        oauth_request = _Request(request, query, {})
        try:
            grant = self.server.get_consent_grant(oauth_request)
        except OAuth2Error as error:
            return JSONResponse(dict(error.get_body()), status_code=400)
        if request.method == "GET":
            return HTMLResponse(_LOGIN_PAGE.format(error="", query=escape(urlencode(query))))
        user = self.users.get(form.get("username", ""))
        if user is None or not secrets.compare_digest(user.password, form.get("password", "")):
            page = _LOGIN_PAGE.format(error="IDまたはパスワードが違います", query=escape(urlencode(query)))
            return HTMLResponse(page, status_code=401)
        return self.server.create_authorization_response(oauth_request, grant_user=user, grant=grant)

    async def token(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        return self.server.create_token_response(_Request(request, {}, form))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize, methods=["GET", "POST"]),
                Route("/token", self.token, methods=["POST"]),
            ]
        )

    def start(self) -> OidcTestProvider:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._uvicorn.run, name="oidc-test-provider", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._uvicorn.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the test OIDC provider did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
