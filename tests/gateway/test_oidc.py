"""Sign-in through an OpenID Connect provider, in-process gateway against the suite's real provider
(``tests/gateway/oidc_provider.py``, Authlib's server components under uvicorn): discovery, PKCE, state and
nonce; the first sign-in creates an account with the provider's mapped role or links the account with the
provider-verified address; a tampered state, a replayed callback, another browser's callback, a token with
another nonce, audience or key are all refused; a blocked account cannot sign in this way."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway import oidc
from gateway.app import create_app
from gateway.settings import OIDC_STATE_COOKIE, REFRESH_COOKIE, SESSION_COOKIE, GatewaySettings, OidcProvider
from tests.conftest import PASSWORD
from tests.gateway.oidc_provider import OidcTestProvider

CLIENT_ID = "tsunagu-gateway"
CLIENT_SECRET = "test-client-secret-0123456789"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcTestProvider]:
    running = OidcTestProvider().start()
    running.add_client(CLIENT_ID, CLIENT_SECRET, ["http://testserver/auth/oidc/chamber/callback"])
    yield running
    running.stop()


@pytest.fixture
def oidc_settings(settings: GatewaySettings, provider: OidcTestProvider) -> GatewaySettings:
    return settings.model_copy(
        update={
            "public_url": "http://testserver",
            "oidc_providers": {
                "chamber": OidcProvider(
                    issuer=provider.issuer,
                    client_id=CLIENT_ID,
                    client_secret=CLIENT_SECRET,
                    role="sme",
                    label="テスト商工会議所ID",
                )
            },
        }
    )


@pytest.fixture
def oidc_client(oidc_settings: GatewaySettings, upstream: FastAPI, provider: OidcTestProvider) -> Iterator[TestClient]:
    provider.tamper = None
    oidc._discovery.clear()
    oidc._jwks.clear()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream))
    with TestClient(create_app(oidc_settings, upstream=http)) as test_client:
        yield test_client


def start(client: TestClient, next_page: str = "/requests") -> tuple[str, dict[str, str]]:
    """GET the gateway's login route: where it sends the browser, and the query it sends the provider."""
    response = client.get("/auth/oidc/chamber/login", params={"next": next_page}, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def at_provider(location: str, email: str, password: str = PASSWORD) -> str:
    """Sign in at the provider as a person would (form and all); the callback URL it redirects to."""
    with httpx.Client() as browser:
        page = browser.get(location)
        assert page.status_code == 200 and "テスト商工会議所ID" in page.text
        signed = browser.post(location, data={"username": email, "password": password})
        assert signed.status_code == 302, signed.text
        return signed.headers["location"]


def finish(client: TestClient, callback: str) -> httpx.Response:
    parts = urlsplit(callback)
    return client.get(f"{parts.path}?{parts.query}", follow_redirects=False)


def sign_in_through_provider(client: TestClient, provider: OidcTestProvider, email: str) -> httpx.Response:
    location, _query = start(client)
    return finish(client, at_provider(location, email))


def refused(response: httpx.Response, status: int, message_ja: str) -> None:
    """A refusal as the browser gets it: a page (Japanese first) with the status, no session cookie."""
    assert response.status_code == status, response.text
    text = response.json()["error"]["message_ja"] if "json" in response.headers["content-type"] else response.text
    assert message_ja in text


def new_email() -> str:
    return f"oidc-{uuid.uuid4().hex[:8]}@example.jp"


def test_first_sign_in_creates_an_account_with_the_mapped_role(
    oidc_client: TestClient, provider: OidcTestProvider
) -> None:
    email = new_email()
    provider.add_user(email, PASSWORD, name="連携 花子")
    listed = oidc_client.get("/api/v1/auth/oidc/providers").json()
    assert listed == [{"name": "chamber", "label": "テスト商工会議所ID", "login_url": "/auth/oidc/chamber/login"}]

    location, query = start(oidc_client, "/requests?tab=open")
    assert location.startswith(f"{provider.issuer}/authorize?")
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code" and "openid" in query["scope"]
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43 and query["nonce"]
    assert oidc_client.cookies.get(OIDC_STATE_COOKIE) == query["state"]
    assert query["redirect_uri"] == "http://testserver/auth/oidc/chamber/callback"

    done = finish(oidc_client, at_provider(location, email))
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/requests?tab=open"  # back where the person started
    assert SESSION_COOKIE in oidc_client.cookies and REFRESH_COOKIE in oidc_client.cookies
    me = oidc_client.get("/api/v1/auth/me").json()
    assert (me["email"], me["role"], me["display_name"]) == (email, "sme", "連携 花子")

    # The verifier never left the gateway: the provider saw only its S256 challenge.
    assert "code_verifier" not in query and provider.authorize_requests[-1]["code_challenge"] == query["code_challenge"]

    # A second sign-in goes by the provider's subject to the same account.
    oidc_client.cookies.clear()
    again = sign_in_through_provider(oidc_client, provider, email)
    assert again.status_code == 303 and oidc_client.get("/api/v1/auth/me").json()["id"] == me["id"]


def test_first_sign_in_links_the_account_with_the_verified_address(
    oidc_client: TestClient, provider: OidcTestProvider, account: Callable[..., dict]
) -> None:
    email = new_email()
    expert = account("expert", email)
    expert_id = oidc_client.get("/api/v1/auth/me", headers=expert).json()["id"]
    provider.add_user(email.upper(), PASSWORD)  # the provider spells it otherwise: one identifier all the same
    provider.users[email.upper()].email = email.upper()
    done = sign_in_through_provider(oidc_client, provider, email.upper())
    assert done.status_code == 303, done.text
    me = oidc_client.get("/api/v1/auth/me").json()
    assert me["id"] == expert_id and me["role"] == "expert"  # linked, role kept

    admin = account("admin", "admin@example.jp")
    linked = oidc_client.get(
        "/api/v1/admin/audit", headers=admin, params={"kind": "oidc_linked", "user_id": expert_id}
    ).json()["items"]
    assert linked[0]["details"]["provider"] == "chamber" and linked[0]["details"]["created"] is False
    signed = oidc_client.get("/api/v1/admin/audit", headers=admin, params={"kind": "sign_in", "user_id": expert_id})
    assert signed.json()["items"][0]["details"]["method"] == "oidc:chamber"


def test_an_unverified_address_neither_links_nor_creates(
    oidc_client: TestClient, provider: OidcTestProvider, account: Callable[..., dict]
) -> None:
    email = new_email()
    account("sme", email)
    provider.add_user(email, PASSWORD, verified=False)
    refused(sign_in_through_provider(oidc_client, provider, email), 403, "確認済みのメールアドレスが必要です")
    assert SESSION_COOKIE not in oidc_client.cookies


def test_a_tampered_state_and_a_replayed_callback_are_refused(
    oidc_client: TestClient, provider: OidcTestProvider
) -> None:
    email = new_email()
    provider.add_user(email, PASSWORD)
    location, query = start(oidc_client)
    callback = at_provider(location, email)
    tampered = callback.replace(f"state={query['state']}", "state=" + "x" * 43)
    refused(
        finish(oidc_client, tampered), 400, "ログインを確認できませんでした。もう一度最初からお試しください（state）"
    )

    # Another browser (without the state cookie) cannot finish this sign-in...
    stranger = TestClient(oidc_client.app)
    refused(finish(stranger, callback), 400, "ログインを確認できませんでした")
    # ...this one can, once; the same callback again is refused.
    assert finish(oidc_client, callback).status_code == 303
    oidc_client.cookies.set(OIDC_STATE_COOKIE, query["state"], path="/auth/oidc")
    refused(finish(oidc_client, callback), 400, "有効期限が切れたか、既に使われています")


@pytest.mark.parametrize("tamper", ["nonce", "audience", "signature"])
def test_an_id_token_with_another_nonce_audience_or_key_is_refused(
    oidc_client: TestClient, provider: OidcTestProvider, tamper: str
) -> None:
    email = new_email()
    provider.add_user(email, PASSWORD)
    provider.tamper = tamper
    refused(
        sign_in_through_provider(oidc_client, provider, email), 400, "連携先からのログイン情報を確認できませんでした"
    )
    assert SESSION_COOKIE not in oidc_client.cookies


def test_a_wrong_pkce_verifier_gets_no_token(provider: OidcTestProvider) -> None:
    """The provider itself holds the gateway to PKCE: a code redeemed without the right verifier fails."""
    email = new_email()
    provider.add_user(email, PASSWORD)
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "scope": "openid email",
        "redirect_uri": "http://testserver/auth/oidc/chamber/callback",
        "state": "s",
        "nonce": "n-" + uuid.uuid4().hex,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with httpx.Client(base_url=provider.issuer) as http:
        redirected = http.post("/authorize", params=params, data={"username": email, "password": PASSWORD})
        code = parse_qs(urlsplit(redirected.headers["location"]).query)["code"][0]
        body: dict[str, Any] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"],
        }
        wrong = http.post("/token", data={**body, "code_verifier": "w" * 64}, auth=(CLIENT_ID, CLIENT_SECRET))
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_a_blocked_account_cannot_sign_in_through_the_provider(
    oidc_client: TestClient, provider: OidcTestProvider, account: Callable[..., dict]
) -> None:
    email = new_email()
    provider.add_user(email, PASSWORD)
    assert sign_in_through_provider(oidc_client, provider, email).status_code == 303
    user_id = oidc_client.get("/api/v1/auth/me").json()["id"]
    oidc_client.cookies.clear()
    admin = account("admin", "admin@example.jp")
    assert oidc_client.post(f"/api/v1/admin/users/{user_id}/block", headers=admin).status_code == 200
    refused(sign_in_through_provider(oidc_client, provider, email), 403, "利用停止中")
    # It has no password either: the password sign-in does not open it.
    assert oidc_client.post("/api/v1/auth/token", json={"email": email, "password": ""}).status_code == 401


def test_unknown_providers_and_open_redirects(oidc_client: TestClient) -> None:
    refused(oidc_client.get("/auth/oidc/nowhere/login", follow_redirects=False), 404, "ログイン連携先が見つかりません")
    assert oidc.safe_return_to("//evil.example/x") == "/" and oidc.safe_return_to("https://evil.example") == "/"
    assert oidc.safe_return_to("/\\evil.example") == "/" and oidc.safe_return_to("/requests/1") == "/requests/1"
    missing = oidc_client.get("/auth/oidc/chamber/callback", params={"code": "c"}, follow_redirects=False)
    refused(missing, 400, "ログインを確認できませんでした")


def test_starting_sign_ins_is_limited_per_client_and_old_ones_are_pruned(
    oidc_settings: GatewaySettings, upstream: FastAPI
) -> None:
    from datetime import timedelta

    from sqlmodel import Session, func, select

    from gateway.models import OidcLogin
    from tsunagu.db import make_engine, utcnow

    limited = oidc_settings.model_copy(update={"login_rate_limit_per_client": "3/minute"})
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream))
    with TestClient(create_app(limited, upstream=http)) as client:
        statuses = [client.get("/auth/oidc/chamber/login", follow_redirects=False).status_code for _ in range(4)]
        assert statuses == [302, 302, 302, 429]
    engine = make_engine(oidc_settings.database_url_for("gateway"))
    with Session(engine) as session:
        stale = OidcLogin(
            state="old", provider="chamber", nonce="n", code_verifier="v", created_at=utcnow() - timedelta(hours=1)
        )
        session.add(stale)
        session.commit()
        oidc.store_login(
            session, oidc_settings, OidcLogin(state="new", provider="chamber", nonce="n", code_verifier="v"), "10.0.0.1"
        )
        session.commit()
        assert session.get(OidcLogin, "old") is None and session.get(OidcLogin, "new") is not None
        assert session.exec(select(func.count()).select_from(OidcLogin)).one() == 4
    engine.dispose()
