"""Sessions and tokens in-process (issue 9): one normal form of the sign-in identifier for sign-in, sign-up
and the rate limits (a space before the e-mail no longer buys ten more guesses); the limits on sign-in per
account and per client, on sign-up and on writes (429 with Retry-After, Japanese and English); short-lived
access tokens of a server-side session, refresh tokens rotated on use and a reused one ending the session;
logout, a password change and an admin's block ending tokens at once; a role change applying on the next
call; the OAuth 2 password form; the cookies' attributes; the audit log of all of it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient

from gateway import service
from gateway.app import create_app
from gateway.schemas import SessionTokens, normalize_identifier
from gateway.security import clear_session_cookies, set_session_cookies
from gateway.settings import REFRESH_COOKIE, SESSION_COOKIE, GatewaySettings
from tests.conftest import PASSWORD

NEW_PASSWORD = "another-horse-battery-staple"


@pytest.fixture
def gateway_with(settings: GatewaySettings, upstream: FastAPI) -> Callable[..., Any]:
    """A gateway whose settings differ from the fixture's by the given fields (e.g. a tight limit)."""

    @contextmanager
    def _gateway(**overrides: Any) -> Iterator[TestClient]:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream))
        with TestClient(create_app(settings.model_copy(update=overrides), upstream=http)) as test_client:
            yield test_client

    return _gateway


def sign_up(client: TestClient, role: str = "sme") -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.jp"
    body = {"email": email, "password": PASSWORD, "display_name": "テスト 利用者", "role": role}
    response = client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return email


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return response.json()


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {tokens['access_token']}"}


def audit(client: TestClient, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/admin/audit", headers=admin, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


# --- one identifier, and the rate limits -----------------------------------------------------------------


def test_the_identifier_has_one_form() -> None:
    assert normalize_identifier("  Owner@Example.JP\t") == "owner@example.jp"
    assert normalize_identifier("ＯＷＮＥＲ＠ｅｘａｍｐｌｅ．ｊｐ") == "owner@example.jp"  # full-width (NFKC)
    assert normalize_identifier("STRASSE@example.jp") == normalize_identifier("straße@example.jp")  # casefold


def test_spaces_case_or_full_width_letters_do_not_bypass_the_sign_in_limit(client: TestClient) -> None:
    """The finding: ' target@…' was a new key to the limiter. Every spelling now counts against one."""
    email = sign_up(client)
    local, domain = email.split("@")
    spellings = [email, f" {email}", f"{email} ", email.upper(), f"\u3000{email}", f"{local.upper()}@{domain}"]
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in email)
    spellings += [full_width, f"  {email.title()}", f"\t{email}", f" {full_width} "]
    statuses = [
        client.post("/api/v1/auth/token", json={"email": spelling, "password": "wrong-guess-123"}).status_code
        for spelling in spellings
    ]
    assert statuses == [401] * 10
    limited = client.post("/api/v1/auth/token", json={"email": f"   {email}", "password": PASSWORD})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    error = limited.json()["error"]
    assert error["code"] == "too_many_requests" and "しばらく待って" in error["message_ja"]
    assert "wait" in error["message_en"]
    # The right password under any spelling signs in once the limit allows it (another gateway: fresh counts).


def test_one_client_guessing_across_accounts_is_limited(gateway_with: Callable[..., Any]) -> None:
    with gateway_with(login_rate_limit_per_client="5/minute") as client:
        statuses = [
            client.post(
                "/api/v1/auth/token", json={"email": f"victim{i}@example.jp", "password": "guess-123456"}
            ).status_code
            for i in range(6)
        ]
        assert statuses == [401] * 5 + [429]


def test_sign_up_is_limited_per_client(gateway_with: Callable[..., Any]) -> None:
    with gateway_with(register_rate_limit="3/hour") as client:
        for _ in range(3):
            sign_up(client)
        body = {"email": "fourth@example.jp", "password": PASSWORD, "display_name": "x", "role": "sme"}
        limited = client.post("/api/v1/auth/register", json=body)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 60
        assert "登録の試行が多すぎます" in limited.json()["error"]["message_ja"]


def test_writes_through_the_proxy_are_limited_per_user_and_reads_are_not(
    gateway_with: Callable[..., Any],
) -> None:
    with gateway_with(write_rate_limit="3/minute") as client:
        one = bearer(sign_in(client, sign_up(client)))
        other = bearer(sign_in(client, sign_up(client, "expert")))
        body = {"title": "t", "prefecture": "13"}
        statuses = [client.post("/api/v1/requests", headers=one, json=body).status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429]
        assert client.patch("/api/v1/requests/r1", headers=one, json={}).status_code == 429
        assert client.get("/api/v1/requests/r1", headers=one).status_code == 200  # reads are not counted
        assert client.post("/api/v1/requests", headers=other, json=body).status_code == 201  # per user


def test_a_malformed_limit_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match=r"(?i)parse"):
        GatewaySettings(TSUNAGU_ENV="test", TSUNAGU_LOGIN_RATE_LIMIT="ten per minute")


def test_production_refuses_an_oidc_provider_without_its_secret(tmp_path: Path) -> None:
    keys = tmp_path / "signing-keys.json"  # production's other required secret, present (not read here)
    keys.write_text("{}")
    production = {
        "TSUNAGU_ENV": "production",
        "TSUNAGU_TOKEN_SECRET": "production-token-secret-0123456789abcdef",
        "TSUNAGU_SIGNING_KEYS_FILE": str(keys),
        "TSUNAGU_RATE_LIMIT_STORAGE": "redis://valkey:6379/0",  # production refuses memory://
    }
    provider = {"issuer": "https://id.example.jp", "client_id": "tsunagu"}
    with pytest.raises(ValueError, match="client_secret"):
        GatewaySettings(**production, oidc_providers={"chamber": provider})
    configured = GatewaySettings(**production, oidc_providers={"chamber": {**provider, "client_secret": "s" * 32}})
    assert configured.oidc_providers["chamber"].role == "sme"
    GatewaySettings(TSUNAGU_ENV="development", oidc_providers={"chamber": provider})  # development: allowed


# --- sessions: logout, refresh, password change, block ---------------------------------------------------


def test_logout_ends_the_access_token_at_once(client: TestClient) -> None:
    """The finding: a token still worked after logout."""
    tokens = sign_in(client, sign_up(client))
    assert client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=bearer(tokens)).status_code == 204
    after = client.get("/api/v1/auth/me", headers=bearer(tokens))
    assert after.status_code == 401 and after.json()["error"]["code"] == "session_ended"
    assert "再度ログイン" in after.json()["error"]["message_ja"]
    # Nor does its refresh token get a new one, nor do calls through the proxy pass.
    refused = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refused.status_code == 401
    assert client.post("/api/v1/requests", headers=bearer(tokens), json={}).status_code == 401


def test_logout_by_the_browser_cookies(client: TestClient) -> None:
    email = sign_up(client)
    signed_in = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    access = signed_in.json()["access_token"]
    assert client.get("/api/v1/auth/me").status_code == 200  # the cookie signs the browser in
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert SESSION_COOKIE not in client.cookies and REFRESH_COOKIE not in client.cookies
    assert client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {access}"}).status_code == 401
    # A cookie of an ended session is no sign-in: public pages still answer, private ones say 401.
    client.cookies.set(SESSION_COOKIE, access)
    assert client.get("/api/v1/reference/topics").status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 401


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = sign_in(client, sign_up(client))
    assert first["expires_in"] == 15 * 60 and first["refresh_expires_in"] == 14 * 86400
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert client.get("/api/v1/auth/me", headers=bearer(second)).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(first)).status_code == 200  # same session, still live

    # Within the grace period a second use is taken for two tabs racing: refused, the session lives on.
    racing = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert racing.status_code == 401 and racing.json()["error"]["code"] == "invalid_refresh_token"
    assert client.get("/api/v1/auth/me", headers=bearer(second)).status_code == 200

    # Later, the old token coming back means someone copied it: the session ends for everyone.
    monkeypatch.setattr(service, "REFRESH_REUSE_GRACE_SECONDS", -1)
    stolen = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert stolen.status_code == 401 and stolen.json()["error"]["code"] == "session_ended"
    assert client.get("/api/v1/auth/me", headers=bearer(second)).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"}).status_code == 401
    assert client.post("/api/v1/auth/refresh").status_code == 401


def test_the_browser_refreshes_by_its_cookie(client: TestClient) -> None:
    email = sign_up(client)
    client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    old_refresh = client.cookies[REFRESH_COOKIE]
    refreshed = client.post("/api/v1/auth/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert client.cookies[REFRESH_COOKIE] != old_refresh
    assert client.get("/api/v1/auth/me").json()["email"] == email


def test_a_password_change_ends_every_session(client: TestClient) -> None:
    email = sign_up(client)
    laptop, phone = sign_in(client, email), sign_in(client, email)
    wrong = client.post(
        "/api/v1/auth/password",
        headers=bearer(laptop),
        json={"current_password": "not-the-password", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["fields"][0]["field"] == "current_password"
    short = client.post(
        "/api/v1/auth/password", headers=bearer(laptop), json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert short.status_code == 422 and short.json()["error"]["fields"][0]["field"] == "new_password"

    changed = client.post(
        "/api/v1/auth/password",
        headers=bearer(laptop),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    for old in (laptop, phone):
        assert client.get("/api/v1/auth/me", headers=bearer(old)).status_code == 401
        assert client.post("/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]}).status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(changed.json())).status_code == 200  # the new session
    assert client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD}).status_code == 401
    sign_in(client, email, NEW_PASSWORD)


def test_an_admins_block_ends_every_session_and_unblock_lets_them_back(
    client: TestClient, account: Callable[..., dict]
) -> None:
    admin = account("admin", "admin@example.jp")
    email = sign_up(client, "expert")
    tokens = sign_in(client, email)
    user_id = client.get("/api/v1/auth/me", headers=bearer(tokens)).json()["id"]

    sme = bearer(sign_in(client, sign_up(client)))
    assert client.post(f"/api/v1/admin/users/{user_id}/block", headers=sme).status_code == 403
    assert client.post("/api/v1/admin/users/nobody/block", headers=admin).status_code == 404
    me = client.get("/api/v1/auth/me", headers=admin).json()["id"]
    assert client.post(f"/api/v1/admin/users/{me}/block", headers=admin).status_code == 409

    blocked = client.post(f"/api/v1/admin/users/{user_id}/block", headers=admin, json={"reason": "なりすましの疑い"})
    assert blocked.status_code == 200 and blocked.json()["active"] is False
    assert client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD}).status_code == 401
    listed = client.get("/api/v1/admin/users", headers=admin, params={"active": "false"}).json()
    assert [user["id"] for user in listed["items"]] == [user_id]

    assert client.post(f"/api/v1/admin/users/{user_id}/unblock", headers=admin).json()["active"] is True
    sign_in(client, email)

    kinds = [event["kind"] for event in audit(client, admin, user_id=user_id)]
    assert kinds[:4] == ["sign_in", "unblocked", "sign_in_failed", "blocked"]
    block_event = next(e for e in audit(client, admin, kind="blocked") if e["user_id"] == user_id)
    assert block_event["details"] == {"reason": "なりすましの疑い", "ended": 1}


def test_a_role_change_applies_on_the_next_call_and_is_audited(
    client: TestClient, account: Callable[..., dict]
) -> None:
    admin = account("admin", "admin@example.jp")
    tokens = sign_in(client, sign_up(client))
    user_id = client.get("/api/v1/auth/me", headers=bearer(tokens)).json()["id"]
    assert client.get("/api/v1/admin/audit", headers=bearer(tokens)).status_code == 403

    no_prefectures = client.patch(f"/api/v1/admin/users/{user_id}", headers=admin, json={"role": "broker"})
    assert no_prefectures.status_code == 422 and no_prefectures.json()["error"]["fields"][0]["field"] == "prefectures"
    changed = client.patch(
        f"/api/v1/admin/users/{user_id}", headers=admin, json={"role": "broker", "prefectures": ["沖縄県"]}
    )
    assert changed.status_code == 200 and changed.json()["role"] == "broker" and changed.json()["prefectures"] == ["47"]
    echo = client.get("/api/v1/experts/e1", headers=bearer(tokens)).json()
    assert echo["role"] == "broker"  # the same token, the new role, at the next call

    made_admin = client.patch(f"/api/v1/admin/users/{user_id}", headers=admin, json={"role": "admin"})
    assert made_admin.json()["prefectures"] == []
    assert client.get("/api/v1/admin/audit", headers=bearer(tokens)).status_code == 200
    me = client.get("/api/v1/auth/me", headers=admin).json()["id"]
    demote_self = client.patch(f"/api/v1/admin/users/{me}", headers=admin, json={"role": "sme"})
    assert demote_self.status_code == 409

    changes = audit(client, admin, kind="role_changed", user_id=user_id)
    assert [(e["details"]["before"]["role"], e["details"]["after"]["role"]) for e in changes] == [
        ("broker", "admin"),
        ("sme", "broker"),
    ]
    assert {e["actor_id"] for e in changes} == {me}


def test_the_audit_log_filters_and_is_for_admins(client: TestClient, account: Callable[..., dict]) -> None:
    admin = account("admin", "admin@example.jp")
    email = sign_up(client)
    client.post("/api/v1/auth/token", json={"email": f" {email.upper()}", "password": "wrong-password-1"})
    client.post("/api/v1/auth/token", json={"email": "unknown@example.jp", "password": "wrong-password-1"})
    failed = audit(client, admin, kind="sign_in_failed")
    assert {(e["target"], e["user_id"] is not None) for e in failed} == {(email, True), ("unknown@example.jp", False)}
    assert all(e["client_ip"] == "testclient" for e in failed)
    both = audit(client, admin, kind=["sign_in_failed", "registered"])
    assert {e["kind"] for e in both} == {"sign_in_failed", "registered"}
    assert audit(client, admin, target=email)[0]["kind"] == "sign_in_failed"
    assert audit(client, admin, since="2999-01-01T00:00:00Z") == []
    page = client.get("/api/v1/admin/audit", headers=admin, params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["total"] > 2 and page["limit"] == 2
    assert client.get("/api/v1/admin/audit", headers=admin, params={"kind": "nonsense"}).status_code == 422
    assert client.get("/api/v1/admin/audit").status_code == 401


# --- the OAuth 2 password form, tokens and cookies ----------------------------------------------------------


def test_the_token_endpoint_takes_the_oauth2_password_form(client: TestClient) -> None:
    email = sign_up(client)
    form = {"grant_type": "password", "username": f" {email.upper()}", "password": PASSWORD}
    signed_in = client.post("/api/v1/auth/token", data=form)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["token_type"] == "bearer" and signed_in.json()["user"]["email"] == email
    without_grant = client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert without_grant.status_code == 200
    wrong_grant = client.post("/api/v1/auth/token", data={**form, "grant_type": "client_credentials"})
    assert wrong_grant.status_code == 422 and wrong_grant.json()["error"]["fields"][0]["field"] == "grant_type"
    missing = client.post("/api/v1/auth/token", data={"password": PASSWORD})
    assert missing.status_code == 422 and missing.json()["error"]["fields"][0]["field"] == "username"
    not_json = client.post("/api/v1/auth/token", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 422

    document = client.get("/openapi.json").json()
    content = document["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    assert {"username", "password"} <= set(content["application/x-www-form-urlencoded"]["schema"]["properties"])
    for path in ("/api/v1/auth/refresh", "/api/v1/auth/password", "/api/v1/admin/audit"):
        assert path in document["paths"]
    assert "/api/v1/admin/users/{user_id}/block" in document["paths"]


def test_an_expired_or_forged_access_token_is_refused(settings: GatewaySettings, client: TestClient) -> None:
    tokens = sign_in(client, sign_up(client))
    head, claims, signature = tokens["access_token"].split(".")
    forged = f"{head}.{claims}.{signature[::-1]}"
    assert client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {forged}"}).status_code == 401
    expired_settings = settings.model_copy(update={"access_token_minutes": -1})
    from gateway.security import issue_access_token
    from gateway.service import account_of
    from tsunagu.auth import Principal, Role
    from tsunagu.db import make_engine, session_scope

    engine = make_engine(settings.database_url_for("gateway"))
    user_id = client.get("/api/v1/auth/me", headers=bearer(tokens)).json()["id"]
    with session_scope(engine) as session:
        user = account_of(session, Principal(sub=user_id, role=Role.SME))
        token, _ttl = issue_access_token(user, "any-session", expired_settings)
    engine.dispose()
    expired = client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize(("env", "secure"), [("production", True), ("development", False)])
def test_cookies_are_http_only_same_site_lax_and_secure_in_production(env: str, secure: bool) -> None:
    settings = GatewaySettings(TSUNAGU_ENV="development").model_copy(update={"env": env})
    tokens = SessionTokens(session_id="s", access_token="a", expires_in=900, refresh_token="r", refresh_expires_in=60)
    response = Response()
    set_session_cookies(response, tokens, settings)
    cookies = response.headers.getlist("set-cookie")
    assert len(cookies) == 2
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and ("Secure" in cookie) is secure
    access, refresh = cookies
    assert access.startswith(f"{SESSION_COOKIE}=a;") and "Max-Age=900" in access and "Path=/" in access
    assert refresh.startswith(f"{REFRESH_COOKIE}=r;") and "Max-Age=60" in refresh
    cleared = Response()
    clear_session_cookies(cleared)
    assert all("Max-Age=0" in cookie for cookie in cleared.headers.getlist("set-cookie"))
