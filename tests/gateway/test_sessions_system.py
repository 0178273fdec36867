"""The issue's findings about sessions, replayed against the running system (real processes, real database):
a space before the e-mail no longer bypasses the sign-in limit, a token stops working at logout, and a
password change or an admin's block ends every session, through the proxy too."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import PASSWORD, Api

pytestmark = pytest.mark.e2e


def test_spellings_of_one_address_share_one_sign_in_limit(api: Api) -> None:
    email = f"limit-{uuid.uuid4().hex[:8]}@example.jp"
    body = {"email": email, "password": PASSWORD, "display_name": "テスト", "role": "sme"}
    assert api.http.post("/api/v1/auth/register", json=body).status_code == 201
    spellings = [f" {email}", email.upper(), f"{email} ", f"\u3000{email}", email] * 2
    statuses = [
        api.http.post("/api/v1/auth/token", json={"email": s, "password": "wrong-password-1"}).status_code
        for s in spellings
    ]
    assert statuses == [401] * 10
    limited = api.http.post("/api/v1/auth/token", json={"email": f"  {email}", "password": PASSWORD})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "ログイン試行が多すぎます" in limited.json()["error"]["message_ja"]


def test_logout_password_change_and_block_end_tokens_at_once(api: Api) -> None:
    admin = api.account("admin")  # its own session (the fuzzer may sign the shared admin fixture out)
    sme = api.register("sme")
    assert api.http.get("/api/v1/notifications", headers=sme).status_code == 200
    assert api.http.post("/api/v1/auth/logout", headers=sme).status_code == 204
    assert api.http.get("/api/v1/notifications", headers=sme).status_code == 401
    assert api.http.post("/api/v1/organizations", headers=sme, json={}).status_code == 401  # the proxy too

    expert = api.register("expert")
    me = api.http.get("/api/v1/auth/me", headers=expert).json()
    other_device = api.login(me["email"])
    changed = api.http.post(
        "/api/v1/auth/password",
        headers=expert,
        json={"current_password": PASSWORD, "new_password": "a-brand-new-password-42"},
    )
    assert changed.status_code == 200, changed.text
    api.http.cookies.clear()
    assert api.http.get("/api/v1/auth/me", headers=other_device).status_code == 401
    fresh = {"authorization": f"Bearer {changed.json()['access_token']}"}
    assert api.http.get("/api/v1/auth/me", headers=fresh).status_code == 200

    blocked = api.http.post(f"/api/v1/admin/users/{me['id']}/block", headers=admin, json={"reason": "テスト"})
    assert blocked.status_code == 200 and blocked.json()["active"] is False
    assert api.http.get("/api/v1/auth/me", headers=fresh).status_code == 401
    audit = api.http.get("/api/v1/admin/audit", headers=admin, params={"user_id": me["id"]}).json()["items"]
    assert [event["kind"] for event in audit][:2] == ["blocked", "sign_in"]
    assert "password_changed" in {event["kind"] for event in audit}
