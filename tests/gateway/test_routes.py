"""The gateway's own routes in-process: sign-up, sign-in (token and cookie), sign-out, the caller's account,
accounts an admin creates, reference data and the dead-letter screens' guards."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient

from gateway.settings import SESSION_COOKIE
from tests.conftest import PASSWORD


def register(client: TestClient, email: str, role: str = "sme", **overrides) -> dict:
    body = {"email": email, "password": PASSWORD, "display_name": "株式会社 テスト", "role": role, **overrides}
    response = client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_register_sign_in_me_and_sign_out(client: TestClient) -> None:
    created = register(client, "Owner@Example.JP")
    assert created["email"] == "owner@example.jp" and created["role"] == "sme" and created["prefectures"] == []
    again = client.post(
        "/api/v1/auth/register",
        json={"email": "owner@example.jp", "password": PASSWORD, "display_name": "x", "role": "expert"},
    )
    assert again.status_code == 409 and again.json()["error"]["fields"][0]["field"] == "email"

    signed_in = client.post("/api/v1/auth/token", json={"email": " OWNER@example.jp ", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 900 and token["user"]["id"] == created["id"]
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()

    # The web UI's cookie alone signs the caller in; a bearer token does too.
    assert client.get("/api/v1/auth/me").json()["id"] == created["id"]
    client.cookies.clear()
    bearer = {"authorization": f"Bearer {token['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=bearer).json()["email"] == "owner@example.jp"

    client.cookies.set(SESSION_COOKIE, token["access_token"])
    logout = client.post("/api/v1/auth/logout")
    cleared = logout.headers.get_list("set-cookie")
    assert logout.status_code == 204 and any(c.startswith(f'{SESSION_COOKIE}=""') for c in cleared)
    assert all("max-age=0" in c.lower() for c in cleared)  # the browser drops both cookies


def test_sign_up_is_validated_and_for_smes_and_experts_only(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/register", json={"email": "bad", "password": "short", "display_name": "", "role": "admin"}
    )
    assert response.status_code == 422
    assert {f["field"] for f in response.json()["error"]["fields"]} >= {"email", "password", "display_name", "role"}
    wrong = client.post("/api/v1/auth/token", json={"email": "nobody@example.jp", "password": "whatever-long"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"


def test_password_guessing_on_one_account_is_rate_limited(client: TestClient) -> None:
    email = f"target-{uuid.uuid4().hex[:8]}@example.jp"
    statuses = [
        client.post("/api/v1/auth/token", json={"email": email, "password": f"guess-number-{i}"}).status_code
        for i in range(12)
    ]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    limited = client.post("/api/v1/auth/token", json={"email": email, "password": "another-guess"})
    assert "しばらく待って" in limited.json()["error"]["message_ja"]


def test_bad_and_missing_tokens(client: TestClient) -> None:
    assert client.get("/api/v1/auth/me").status_code == 401
    malformed = client.get("/api/v1/auth/me", headers={"authorization": "Basic abc"})
    assert malformed.status_code == 401 and malformed.json()["error"]["code"] == "invalid_token"
    assert client.get("/api/v1/auth/me", headers={"authorization": "Bearer not-a-token"}).status_code == 401


def test_admins_create_brokers_with_their_prefectures(client: TestClient, account: Callable[..., dict]) -> None:
    admin = account("admin", "admin@example.jp")
    body = {"email": "broker@example.jp", "password": PASSWORD, "display_name": "東京商工会議所", "role": "broker"}
    missing = client.post("/api/v1/admin/users", headers=admin, json=body)
    assert missing.status_code == 422 and missing.json()["error"]["fields"][0]["field"] == "prefectures"
    unknown = client.post("/api/v1/admin/users", headers=admin, json={**body, "prefectures": ["火星"]})
    assert unknown.status_code == 422 and unknown.json()["error"]["fields"][0]["field"].startswith("prefectures")
    created = client.post("/api/v1/admin/users", headers=admin, json={**body, "prefectures": ["東京都", "11", "13"]})
    assert created.status_code == 201, created.text
    assert created.json()["prefectures"] == ["11", "13"] and created.json()["role"] == "broker"

    broker = account("broker", "broker2@example.jp", prefectures=["13"])
    forbidden = client.post("/api/v1/admin/users", headers=broker, json={**body, "email": "x@example.jp"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["message_ja"] == "管理者のみが行えます"
    assert client.post("/api/v1/admin/users", json=body).status_code == 401


def test_dead_letter_screens_are_for_admins_and_say_when_nats_is_down(
    client: TestClient, account: Callable[..., dict]
) -> None:
    assert client.get("/api/v1/admin/dead-letters").status_code == 401
    sme = account("sme", "sme@example.jp")
    assert client.get("/api/v1/admin/dead-letters", headers=sme).status_code == 403
    admin = account("admin", "admin@example.jp")
    down = client.get("/api/v1/admin/dead-letters", headers=admin)
    assert down.status_code == 503 and down.json()["error"]["code"] == "nats_unavailable"
    assert client.post("/api/v1/admin/dead-letters/0/replay", headers=admin).status_code == 422


def test_reference_data(client: TestClient) -> None:
    prefectures = client.get("/api/v1/reference/prefectures").json()
    assert len(prefectures) == 47 and prefectures[12]["code"] == "13" and prefectures[12]["name"] == "東京都"
    assert set(prefectures[12]) == {"code", "name", "name_en", "bureau", "corporations", "dx_certified", "neighbours"}
    assert "ransomware" in {topic["id"] for topic in client.get("/api/v1/reference/topics").json()}
    for path in ("dss-roles", "self-diagnosis", "digitalization-stages"):
        assert client.get(f"/api/v1/reference/{path}").json()
