"""Sign-in through the suite's OpenID Connect provider in a real headless Chromium (Debian's package): the
web UI's /login page offers the provider, the provider's own sign-in form is filled in, and the browser comes
back to the page it wanted, signed in (HttpOnly cookies: the page's script cannot read them)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import OIDC_PROVIDER_NAME, PASSWORD, Api

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_sign_in_with_the_chamber_id_in_chromium(chromium_browser, api: Api, oidc_provider, artifacts) -> None:
    email = f"oidc-{uuid.uuid4().hex[:8]}@example.jp"
    oidc_provider.add_user(email, PASSWORD, name="ブラウザ 三郎")
    gateway = api.system.url("gateway")
    context = chromium_browser.new_context(locale="ja-JP")
    page = context.new_page()
    page.goto(f"{gateway}/login?next=/notifications")
    button = page.locator(f"a[href*='/auth/oidc/{OIDC_PROVIDER_NAME}/login']")
    assert "テスト商工会議所ID" in button.inner_text()
    button.click()
    page.wait_for_url(f"{oidc_provider.issuer}/authorize*")
    page.fill("#username", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{gateway}/notifications*")
    page.screenshot(path=str(artifacts / "oidc-signed-in.png"), full_page=True)

    me = page.request.get(f"{gateway}/api/v1/auth/me")
    assert me.ok and me.json()["email"] == email and me.json()["display_name"] == "ブラウザ 三郎"
    cookies = {cookie["name"]: cookie for cookie in context.cookies()}
    session_cookie = cookies["tsunagu_session"]
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("tsunagu_session") == -1  # no script reads it

    # A tampered state in the callback signs nobody in.
    context.clear_cookies()
    page.goto(f"{gateway}/auth/oidc/{OIDC_PROVIDER_NAME}/callback?code=x&state=forged")
    assert "ログインを確認できませんでした" in page.content()
    assert page.request.get(f"{gateway}/api/v1/auth/me").status == 401
    context.close()
