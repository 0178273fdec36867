"""The gateway forgets what it no longer needs (issue 13): ended sessions with their refresh tokens after
TSUNAGU_SESSION_RETENTION_DAYS (30), sessions that ran out without being ended (idle or too old) as if they
had ended then, and audit entries after TSUNAGU_AUDIT_RETENTION_DAYS (400) — ``gateway.service.prune``, the
command ``tsunagu gateway prune`` and its daily CronJob (deploy/k8s/38-gateway-prune-cronjob.yaml).

Sessions are made by signing in through the API; "later" is the prune's ``now`` moved forward, and old audit
entries are written through the service's own ``audit(at=...)``. SQLite and PostgreSQL (the suite's
``settings`` fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from gateway import repository
from gateway.schemas import AuditKind
from gateway.service import _hash_token, audit, prune
from gateway.settings import GatewaySettings
from tests.conftest import PASSWORD
from tsunagu.db import make_engine, session_scope, utcnow

TSUNAGU = str(Path(sys.executable).parent / "tsunagu")


def _signed_in(client: TestClient) -> dict[str, Any]:
    email = f"prune-{uuid.uuid4().hex[:8]}@example.jp"
    body = {"email": email, "password": PASSWORD, "display_name": "剪定 太郎", "role": "sme"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    response = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return response.json()


def _session_of(settings: GatewaySettings, refresh_token: str) -> str | None:
    """The id of the session a refresh token belongs to; None once the token is gone."""
    engine = make_engine(settings.database_url_for("gateway"))
    with session_scope(engine) as session:
        stored = repository.refresh_token_by_hash(session, _hash_token(refresh_token))
        found = stored.session_id if stored else None
        if found and repository.session_by_id(session, found) is None:
            found = f"orphan token of {found}"
    engine.dispose()
    return found


def _prune(settings: GatewaySettings, days_later: float, **overrides: Any):
    engine = make_engine(settings.database_url_for("gateway"))
    with session_scope(engine) as session:
        report = prune(session, settings.model_copy(update=overrides), now=utcnow() + timedelta(days=days_later))
    engine.dispose()
    return report


def _audit_total(settings: GatewaySettings) -> int:
    engine = make_engine(settings.database_url_for("gateway"))
    with session_scope(engine) as session:
        _items, total = repository.audit_page(session, limit=1, offset=0)
    engine.dispose()
    return total


def test_ended_sessions_go_after_the_retention_and_run_out_ones_after_their_limit_and_the_retention(
    settings: GatewaySettings, client: TestClient
) -> None:
    assert (settings.session_retention_days, settings.session_idle_days) == (30, 14)  # the defaults
    signed_out = _signed_in(client)
    assert (
        client.post(
            "/api/v1/auth/logout", headers={"authorization": f"Bearer {signed_out['access_token']}"}
        ).status_code
        == 204
    )
    live = _signed_in(client)
    # One refresh: the used token and its successor both belong to the session.
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": live["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    client.cookies.clear()
    live_refresh = refreshed.json()["refresh_token"]
    live_session = _session_of(settings, live_refresh)
    assert live_session and _session_of(settings, live["refresh_token"]) == live_session
    ended_session = _session_of(settings, signed_out["refresh_token"])
    assert ended_session

    # 29 days on: everything is kept (ended 29 days ago; the live one idle, but only since day 14).
    report = _prune(settings, 29)
    assert (report.sessions, report.refresh_tokens) == (0, 0)

    # 31 days on: the signed-out session goes, with its token; the other ran out on day 14 and is kept to day 44.
    report = _prune(settings, 31)
    assert (report.sessions, report.refresh_tokens) == (1, 1)
    assert _session_of(settings, signed_out["refresh_token"]) is None
    assert _session_of(settings, live_refresh) == live_session
    # Today, the pruned session's refresh token is simply unknown (401), the kept one works.
    gone = client.post("/api/v1/auth/refresh", json={"refresh_token": signed_out["refresh_token"]})
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_refresh_token"
    kept = client.post("/api/v1/auth/refresh", json={"refresh_token": live_refresh})
    assert kept.status_code == 200, kept.text
    client.cookies.clear()
    latest = kept.json()["refresh_token"]

    # 45 days on: idle 45 days > 14 + 30; the session goes with all three of its tokens.
    report = _prune(settings, 45)
    assert (report.sessions, report.refresh_tokens) == (1, 3)
    assert _session_of(settings, latest) is None
    # Nothing was audit-old: sign-ups, sign-ins and the sign-out are all still there.
    assert _audit_total(settings) >= 5


def test_a_session_in_use_goes_once_it_is_older_than_its_maximum_and_the_retention(
    settings: GatewaySettings, client: TestClient
) -> None:
    tokens = _signed_in(client)
    # Idle would never end it here (365 days); the 90-day maximum does, kept 30 days past that.
    assert _prune(settings, 119, session_idle_days=365, session_max_days=90).sessions == 0
    assert _session_of(settings, tokens["refresh_token"])
    assert _prune(settings, 121, session_idle_days=365, session_max_days=90).sessions == 1
    assert _session_of(settings, tokens["refresh_token"]) is None


def test_audit_entries_older_than_the_retention_go_in_batches_and_newer_stay(
    settings: GatewaySettings, client: TestClient
) -> None:
    assert settings.audit_retention_days == 400
    tokens = _signed_in(client)  # today's sign-up and sign-in: kept
    user_id = tokens["user"]["id"]
    today = _audit_total(settings)
    engine = make_engine(settings.database_url_for("gateway"))
    with session_scope(engine) as session:
        for days in (401, 500, 800, 1200, 2000):
            audit(session, AuditKind.SIGN_IN, user_id=user_id, at=utcnow() - timedelta(days=days), method="password")
        audit(session, AuditKind.SIGN_IN, user_id=user_id, at=utcnow() - timedelta(days=399), method="password")
    with session_scope(engine) as session:
        report = prune(session, settings, batch=2)  # 2, 2, 1: three transactions
    engine.dispose()
    assert report.audit_events == 5
    assert _audit_total(settings) == today + 1  # the 399-day-old entry stays
    assert _prune(settings, 0).audit_events == 0  # nothing left to do


def test_the_prune_command_needs_the_database_and_none_of_the_gateways_secrets(
    settings: GatewaySettings, client: TestClient, tmp_path: Path
) -> None:
    user_id = _signed_in(client)["user"]["id"]
    engine = make_engine(settings.database_url_for("gateway"))
    with session_scope(engine) as session:
        audit(session, AuditKind.SIGN_IN, user_id=user_id, at=utcnow() - timedelta(days=500), method="password")
    engine.dispose()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TSUNAGU_") and key != "DATABASE_URL"}
    # As the CronJob runs it: production, the gateway's database, no token secret, no signing keys.
    env |= {"TSUNAGU_ENV": "production", "DATABASE_URL": settings.database_url_for("gateway")}
    env["TSUNAGU_DATA_DIR"] = str(tmp_path / "job")
    result = subprocess.run(
        [TSUNAGU, "gateway", "prune"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 audit entries over 400 days old" in result.stdout, result.stdout
