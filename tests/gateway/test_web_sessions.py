"""The 相談会 and hub-project screens' own rules, in-process (the services stand in as the gateway tests'
echo app; the whole journey is tests/browser/test_session_screens.py): each page needs its role (anonymous
to /login and back, another role a readable 403 page) and each of their forms its CSRF token."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.gateway.test_web import sign_in, token_of

PAGES = {
    "/broker/sessions": "broker",
    "/broker/sessions/new": "broker",
    "/broker/sessions/day1": "broker",
    "/sessions": "sme",
    "/sessions/day1": "sme",
    "/hub/projects/new": "hub",
    "/hub/projects/p1": "hub",
}
FORMS = {
    "/broker/sessions/new": "broker",
    "/broker/sessions/day1/assignment": "broker",
    "/sessions/day1/register": "sme",
    "/hub/projects/new": "hub",
    "/hub/projects/p1/teams": "hub",
    "/hub/projects/p1/confirm": "hub",
}


def test_the_pages_send_the_anonymous_to_login_and_back(client: TestClient) -> None:
    for path in PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=%2F"), path


def test_planning_pages_refuse_an_sme_with_a_readable_page(client: TestClient, account) -> None:
    account("sme", "web-sessions-sme@example.jp")
    sign_in(client, "web-sessions-sme@example.jp")
    for path in ("/broker/sessions", "/broker/sessions/new", "/hub/projects/new"):
        response = client.get(path)
        assert response.status_code == 403 and response.headers["content-type"].startswith("text/html"), path
        assert "このページを開く権限がありません" in response.text


def test_every_form_needs_its_token(client: TestClient, account) -> None:
    for role in ("broker", "sme", "hub"):
        other = TestClient(client.app)
        account(role, f"web-sessions-form-{role}@example.jp", ["31"])
        sign_in(other, f"web-sessions-form-{role}@example.jp")
        assert token_of(other, "/notifications")
        for path, owner in FORMS.items():
            if owner != role:
                continue
            refused = other.post(path, data={"title": "x"}, follow_redirects=False)
            assert refused.status_code == 403, path
            assert "フォームの送信を確認できませんでした" in refused.text, path
