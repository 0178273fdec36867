"""The web UI's own rules, in-process (the services stand in as the gateway tests' echo app): every form
needs its CSRF token, bound to the browser and the session; errors are pages in Japanese for screens and
JSON for the API; pages that need a signed-in person send the browser to /login and back (never to
another site); the sign-in form keeps the e-mail and marks the field."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import PASSWORD

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def token_of(client: TestClient, path: str = "/login") -> str:
    found = TOKEN.search(client.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: TestClient, email: str) -> None:
    response = client.post(
        "/login", data={"csrf_token": token_of(client), "email": email, "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def test_a_form_without_its_token_is_refused_with_a_readable_page(client: TestClient, account) -> None:
    account("sme", "web-sme@example.jp")
    client.get("/login")  # the browser has its CSRF cookie
    refused = client.post("/login", data={"email": "web-sme@example.jp", "password": PASSWORD})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "フォームの送信を確認できませんでした" in refused.text and "tsunagu_session" not in refused.headers.get(
        "set-cookie", ""
    )
    forged = client.post("/login", data={"csrf_token": "0" * 64, "email": "web-sme@example.jp", "password": PASSWORD})
    assert forged.status_code == 403


def test_a_token_works_only_with_its_own_cookie_and_session(client: TestClient, settings, account) -> None:
    account("sme", "web-sme2@example.jp")
    anonymous_token = token_of(client)
    sign_in(client, "web-sme2@example.jp")
    # The token of the page before sign-in names no user: refused for the signed-in session.
    stale = client.post("/notifications/read-all", data={"csrf_token": anonymous_token}, follow_redirects=False)
    assert stale.status_code == 403
    fresh = client.post(
        "/notifications/read-all", data={"csrf_token": token_of(client, "/notifications")}, follow_redirects=False
    )
    assert fresh.status_code == 303 and fresh.headers["location"] == "/notifications"
    # Another browser (another CSRF cookie) cannot use this browser's token.
    other = TestClient(client.app)
    other.get("/login")
    other.cookies.set("tsunagu_session", client.cookies.get("tsunagu_session"))
    stolen = other.post("/notifications/read-all", data={"csrf_token": token_of(client, "/notifications")})
    assert stolen.status_code == 403


def test_sign_in_keeps_the_email_marks_the_field_and_goes_back_to_the_page(client: TestClient, account) -> None:
    account("sme", "web-sme3@example.jp")
    wrong = client.post(
        "/login", data={"csrf_token": token_of(client), "email": "web-sme3@example.jp", "password": "wrong-password"}
    )
    assert wrong.status_code == 400
    assert 'value="web-sme3@example.jp"' in wrong.text and 'aria-invalid="true"' in wrong.text
    assert "メールアドレスまたはパスワードが正しくありません" in wrong.text
    back = client.post(
        "/login",
        data={
            "csrf_token": token_of(client),
            "email": "web-sme3@example.jp",
            "password": PASSWORD,
            "next": "/requests",
        },
        follow_redirects=False,
    )
    assert back.status_code == 303 and back.headers["location"] == "/requests"
    assert "tsunagu_session" in back.headers.get("set-cookie", "")


def test_sign_in_never_sends_the_browser_to_another_site(client: TestClient, account) -> None:
    account("expert", "web-expert@example.jp")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = client.post(
            "/login",
            data={
                "csrf_token": token_of(client),
                "email": "web-expert@example.jp",
                "password": PASSWORD,
                "next": target,
            },
            follow_redirects=False,
        )
        assert response.status_code == 303 and response.headers["location"] == "/me/proposals"
        client.cookies.delete("tsunagu_session")


def test_pages_that_need_a_person_send_the_browser_to_login_and_back(client: TestClient) -> None:
    for path in ("/requests", "/requests/new", "/me/profile", "/broker", "/map", "/admin", "/notifications"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=%2F"), path


def test_a_page_of_another_role_is_a_readable_403(client: TestClient, account) -> None:
    account("sme", "web-sme4@example.jp")
    sign_in(client, "web-sme4@example.jp")
    response = client.get("/admin")
    assert response.status_code == 403 and response.headers["content-type"].startswith("text/html")
    assert "このページを開く権限がありません" in response.text


def test_screens_answer_error_pages_and_the_api_keeps_its_json(client: TestClient) -> None:
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "ページが見つかりません" in page.text and '<html lang="ja">' in page.text
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json()["error"]["code"]
    bad = client.get("/?offset=-1")
    assert bad.status_code == 422 and "入力内容に誤りがあります" in bad.text


def test_register_keeps_what_was_typed_and_marks_each_field(client: TestClient) -> None:
    response = client.post(
        "/register",
        data={
            "csrf_token": token_of(client, "/register"),
            "email": "not-an-address",
            "display_name": "山田商店",
            "password": "short",
            "password_confirm": "other",
            "role": "sme",
        },
    )
    assert response.status_code == 400
    for field in ("email", "password", "password_confirm"):
        assert f'id="f-{field}"' in response.text and f'id="{field}-error"' in response.text
    assert 'value="山田商店"' in response.text and 'value="not-an-address"' in response.text


def test_login_offers_each_configured_oidc_provider(client: TestClient, settings) -> None:
    from gateway.settings import OidcProvider

    settings.oidc_providers = {
        "chamber": OidcProvider(issuer="https://id.example.jp", client_id="tsunagu", label="商工会議所ID")
    }
    page = client.get("/login?next=/requests")
    assert 'href="/auth/oidc/chamber/login?next=/requests"' in page.text or (
        'href="/auth/oidc/chamber/login?next=%2Frequests"' in page.text
    )
    assert "商工会議所ID でログイン" in page.text
