"""The gateway remembers live sessions for two seconds (issue 13: the session lookup was a query per call),
and that memory never outlives a change made here: a logout, a password change, a block or a role change
committed by this process ends or changes the token on the very next call. A change made elsewhere (another
gateway replica) is seen within ``SESSION_CACHE_SECONDS``; a lookup that raced a logout is not remembered."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from gateway import security
from gateway.security import forget_sessions
from tests.conftest import PASSWORD
from tsunagu.auth import Principal, Role


def _sign_up_and_in(client: TestClient, role: str = "sme") -> dict[str, Any]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.jp"
    body = {"email": email, "password": PASSWORD, "display_name": "テスト 利用者", "role": role}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    response = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return response.json()


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {tokens['access_token']}"}


@contextmanager
def _session_lookups(client: TestClient) -> Iterator[list[str]]:
    """The statements that read ``auth_sessions`` while the block runs."""
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if "FROM auth_sessions" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture(autouse=True)
def _fresh_memory() -> Iterator[None]:
    forget_sessions()
    yield
    forget_sessions()


def test_a_live_session_is_read_once_then_remembered(client: TestClient) -> None:
    tokens = _sign_up_and_in(client)
    with _session_lookups(client) as lookups:
        for _ in range(5):
            assert client.get("/api/v1/experts/e1", headers=_bearer(tokens)).status_code == 200
            assert client.get("/api/v1/auth/me", headers=_bearer(tokens)).status_code == 200
    assert len(lookups) == 1  # ten calls, one query


def test_a_logout_ends_a_remembered_token_on_the_next_call(client: TestClient) -> None:
    tokens = _sign_up_and_in(client)
    assert client.get("/api/v1/experts/e1", headers=_bearer(tokens)).status_code == 200  # remembered now
    assert client.post("/api/v1/auth/logout", headers=_bearer(tokens)).status_code == 204
    after = client.get("/api/v1/experts/e1", headers=_bearer(tokens))
    assert after.status_code == 401 and after.json()["error"]["code"] == "session_ended"


def test_a_password_change_ends_every_remembered_session(client: TestClient) -> None:
    first = _sign_up_and_in(client)
    email = client.get("/api/v1/auth/me", headers=_bearer(first)).json()["email"]
    second = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD}).json()
    client.cookies.clear()
    for tokens in (first, second):
        assert client.get("/api/v1/experts/e1", headers=_bearer(tokens)).status_code == 200
    changed = client.post(
        "/api/v1/auth/password",
        headers=_bearer(first),
        json={"current_password": PASSWORD, "new_password": "another-horse-battery-staple"},
    )
    assert changed.status_code == 200, changed.text
    assert client.get("/api/v1/experts/e1", headers=_bearer(second)).status_code == 401  # a bulk UPDATE
    assert client.get("/api/v1/experts/e1", headers=_bearer(first)).status_code == 401


def test_a_block_and_a_role_change_apply_to_a_remembered_session_at_once(
    client: TestClient, account: Callable[..., dict]
) -> None:
    admin = account("admin", f"admin-{uuid.uuid4().hex[:6]}@example.jp")
    tokens = _sign_up_and_in(client)
    user_id = client.get("/api/v1/auth/me", headers=_bearer(tokens)).json()["id"]
    assert client.get("/api/v1/experts/e1", headers=_bearer(tokens)).json()["role"] == "sme"
    changed = client.patch(
        f"/api/v1/admin/users/{user_id}", headers=admin, json={"role": "broker", "prefectures": ["13"]}
    )
    assert changed.status_code == 200
    assert client.get("/api/v1/experts/e1", headers=_bearer(tokens)).json()["role"] == "broker"
    assert (
        client.post(f"/api/v1/admin/users/{user_id}/block", headers=admin, json={"reason": "テスト"}).status_code == 200
    )
    assert client.get("/api/v1/experts/e1", headers=_bearer(tokens)).status_code == 401


def test_a_session_ended_elsewhere_stops_within_the_memory_window(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica's logout is a commit this process does not see: the memory's short life bounds it."""
    monkeypatch.setattr(security, "SESSION_CACHE_SECONDS", 0.3)
    tokens = _sign_up_and_in(client)
    assert client.get("/api/v1/experts/e1", headers=_bearer(tokens)).status_code == 200
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:  # as another process would: no ORM session of this one
        connection.execute(text("UPDATE auth_sessions SET ended_at = CURRENT_TIMESTAMP, end_reason = 'logout'"))
    assert client.get("/api/v1/experts/e1", headers=_bearer(tokens)).status_code == 200  # still remembered
    time.sleep(0.35)
    assert client.get("/api/v1/experts/e1", headers=_bearer(tokens)).status_code == 401


def test_a_lookup_that_raced_a_change_is_not_remembered() -> None:
    principal = Principal(sub="u1", role=Role.SME, name="x")
    generation = security._generation[0]
    forget_sessions()  # e.g. a logout committed while the lookup was reading
    security._remember("s1", principal, "u1", generation)
    assert security._remembered({"sid": "s1", "sub": "u1"}) is None
    security._remember("s1", principal, "u1", security._generation[0])
    assert security._remembered({"sid": "s1", "sub": "u1"}) == principal
    assert security._remembered({"sid": "s1", "sub": "someone else"}) is None
