"""/broker/search's own rules, in-process (the services stand in as the gateway tests' echo app): it needs a
signed-in broker or hub staff member (the login page for anyone else signed out, a readable 403 for other
roles), and a bad parameter is a Japanese error page, never a 500. What it finds is the browser test's
business (tests/browser/test_search_screens.py, the whole system)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.gateway.test_web import sign_in


def test_the_search_screen_is_for_support_staff(client: TestClient, account) -> None:
    response = client.get("/broker/search?q=x", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=%2Fbroker%2Fsearch")
    account("sme", "web-search-sme@example.jp")
    sign_in(client, "web-search-sme@example.jp")
    refused = client.get("/broker/search")
    assert refused.status_code == 403 and "このページを開く権限がありません" in refused.text


def test_bad_parameters_are_a_readable_422(client: TestClient, account) -> None:
    account("broker", "web-search-broker@example.jp", ["36"])
    sign_in(client, "web-search-broker@example.jp")
    for query in ("index=people", "offset=-1", "q=" + "あ" * 201, "offset=abc"):
        page = client.get(f"/broker/search?{query}")
        assert page.status_code == 422, query
        assert page.headers["content-type"].startswith("text/html") and "入力内容に誤りがあります" in page.text
