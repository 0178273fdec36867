"""Sign-in through the suite's OpenID Connect provider against the running system (real processes; the
gateway configured by the ``system`` fixture with TSUNAGU_OIDC_PROVIDERS), at API level: an httpx client
follows the redirects as a browser would (gateway → provider's sign-in form → gateway callback → the page
it started from) and ends signed in with cookies; a tampered state ends nowhere; logout ends that session."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.settings import SESSION_COOKIE
from tests.conftest import OIDC_PROVIDER_NAME, PASSWORD, Api

pytestmark = pytest.mark.e2e


def test_sign_in_through_the_provider_follows_the_redirects(api: Api, oidc_provider) -> None:
    email = f"oidc-{uuid.uuid4().hex[:8]}@example.jp"
    oidc_provider.add_user(email, PASSWORD, name="連携 次郎")
    gateway = api.system.url("gateway")
    with httpx.Client(base_url=gateway, follow_redirects=True, timeout=30) as browser:
        form = browser.get(f"/auth/oidc/{OIDC_PROVIDER_NAME}/login", params={"next": "/api/v1/auth/me"})
        assert form.status_code == 200 and str(form.url).startswith(oidc_provider.issuer)
        assert "テスト商工会議所ID" in form.text
        done = browser.post(str(form.url), data={"username": email, "password": PASSWORD})
        assert done.status_code == 200, done.text
        assert str(done.url) == f"{gateway}/api/v1/auth/me"  # back where the sign-in started
        me = done.json()
        assert (me["email"], me["role"], me["display_name"]) == (email, "sme", "連携 次郎")
        hops = [urlsplit(str(r.url)).path for r in done.history]
        assert hops == ["/authorize", f"/auth/oidc/{OIDC_PROVIDER_NAME}/callback"]

        # The session works through the proxy too, and logout ends it at once.
        access = browser.cookies.get(SESSION_COOKIE)
        assert browser.get("/api/v1/notifications").status_code == 200
        assert browser.post("/api/v1/auth/logout").status_code == 204
        bearer = {"authorization": f"Bearer {access}"}
        assert browser.get("/api/v1/auth/me", headers=bearer).status_code == 401


def test_a_tampered_state_signs_nobody_in(api: Api, oidc_provider) -> None:
    email = f"oidc-{uuid.uuid4().hex[:8]}@example.jp"
    oidc_provider.add_user(email, PASSWORD)
    gateway = api.system.url("gateway")
    with httpx.Client(base_url=gateway, timeout=30) as browser:
        start = browser.get(f"/auth/oidc/{OIDC_PROVIDER_NAME}/login")
        location = start.headers["location"]
        signed = httpx.post(location, data={"username": email, "password": PASSWORD})
        callback = urlsplit(signed.headers["location"])
        query = {k: v[0] for k, v in parse_qs(callback.query).items()}
        tampered = browser.get(callback.path, params={**query, "state": query["state"][::-1]})
        assert tampered.status_code == 400 and "state" in tampered.text
        assert SESSION_COOKIE not in browser.cookies
        assert browser.get("/api/v1/auth/me").status_code == 401
