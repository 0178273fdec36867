"""The living list: the rules (registration, training, confirmation), reminders, the job and confirmation."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.profiles.freshness import evaluate, run_freshness, run_freshness_job
from services.profiles.models import Expert
from services.profiles.settings import ProfilesSettings
from tests.profiles.conftest import Auth, create_listed, expert_body, outbox
from tsunagu.auth import Role
from tsunagu.events import Subjects

SETTINGS = ProfilesSettings(PROFILES_CONFIRMATION_MAX_AGE_DAYS=180, PROFILES_REMINDER_LEAD_DAYS=14)


def entry(**fields) -> Expert:
    values = {
        "kind": "sekisupe",
        "name": "山田 太郎",
        "registration_number": "012345",
        "registration_date": date(2024, 4, 1),
        "renewal_deadline": date(2027, 3, 31),
        "training": {"online": ["2024-06-01", "2025-06-01", "2026-06-01"], "practical": ["2025-09-01"]},
        "last_confirmed_at": datetime(2026, 10, 1, tzinfo=UTC),
        "content_hash": "",
    }
    return Expert(**(values | fields))


def test_an_entry_in_order_is_active_without_reminders() -> None:
    evaluation = evaluate(entry(), date(2026, 11, 22), SETTINGS)
    assert evaluation.problem is None and evaluation.reminders == []


def test_expired_registration() -> None:
    problem = evaluate(entry(), date(2027, 4, 1), SETTINGS).problem
    assert problem is not None and problem.code == "registration_expired"
    assert "2027-03-31" in problem.ja and "2027-03-31" in problem.en


def test_training_lapses_when_a_years_online_course_is_missing() -> None:
    expert = entry(training={"online": ["2024-06-01", "2026-06-01"], "practical": ["2025-09-01"]})
    assert evaluate(expert, date(2026, 3, 31), SETTINGS).problem is None  # the second year is not over yet
    problem = evaluate(expert, date(2026, 4, 1), SETTINGS).problem
    assert problem is not None and problem.code == "training_lapsed" and "オンライン講習" in problem.ja


def test_practical_course_and_last_online_course_are_due_60_days_before_expiry() -> None:
    expert = entry(training={"online": ["2024-06-01", "2025-06-01", "2026-06-01"], "practical": []})
    cutoff = date(2027, 3, 31) - timedelta(days=60)
    due = evaluate(expert, cutoff - timedelta(days=10), SETTINGS)
    assert due.problem is None and [r.code for r in due.reminders if r.code == "training_due"]
    lapsed = evaluate(expert, cutoff + timedelta(days=1), SETTINGS).problem
    assert lapsed is not None and lapsed.code == "training_lapsed" and "実践講習" in lapsed.ja


def test_unrecorded_training_is_reminded_or_strict() -> None:
    expert = entry(training=None)
    lenient = evaluate(expert, date(2026, 11, 22), SETTINGS)
    assert lenient.problem is None and [r.code for r in lenient.reminders] == ["training_unrecorded"]
    strict = ProfilesSettings(PROFILES_REQUIRE_TRAINING_RECORD=True)
    assert evaluate(expert, date(2026, 11, 22), strict).problem.code == "training_unrecorded"  # type: ignore[union-attr]


def test_confirmation_ages_reminder_then_stale() -> None:
    confirmed = datetime(2026, 6, 1, tzinfo=UTC)
    expert = entry(last_confirmed_at=confirmed)
    due = confirmed.date() + timedelta(days=180)
    assert evaluate(expert, due - timedelta(days=15), SETTINGS).reminders == []
    assert [r.code for r in evaluate(expert, due - timedelta(days=14), SETTINGS).reminders] == ["confirmation_due"]
    assert evaluate(expert, due, SETTINGS).problem is None
    assert evaluate(expert, due + timedelta(days=1), SETTINGS).problem.code == "confirmation_stale"  # type: ignore[union-attr]
    short = ProfilesSettings(PROFILES_CONFIRMATION_MAX_AGE_DAYS=30)
    assert evaluate(expert, confirmed.date() + timedelta(days=31), short).problem.code == "confirmation_stale"  # type: ignore[union-attr]


def test_dx_talent_only_needs_confirmation() -> None:
    talent = entry(
        kind="dx_talent", registration_number=None, registration_date=None, renewal_deadline=None, training=None
    )
    assert evaluate(talent, date(2026, 11, 22), SETTINGS).problem is None
    assert evaluate(talent, date(2027, 6, 1), SETTINGS).problem.code == "confirmation_stale"  # type: ignore[union-attr]


def _backdate(engine: Engine, expert_id: str, days: int) -> None:
    with Session(engine) as session:
        expert = session.get(Expert, expert_id)
        assert expert is not None
        expert.last_confirmed_at = datetime.now(UTC) - timedelta(days=days)
        session.add(expert)
        session.commit()


def test_the_job_deactivates_reminds_once_and_confirmation_reactivates(
    client: TestClient, auth: Auth, engine: Engine, settings: ProfilesSettings
) -> None:
    owner = auth(Role.EXPERT, "stale-expert")
    stale = create_listed(client, auth, expert_body(), "stale-expert").json()
    due_soon = create_listed(client, auth, expert_body(registration_number="222222"), "soon").json()
    _backdate(engine, stale["id"], 200)
    _backdate(engine, due_soon["id"], 170)
    before = len(outbox(engine))

    summary = client.post("/admin/experts/freshness/run", headers=auth(Role.ADMIN)).json()
    assert summary["checked"] == 2
    assert summary["deactivated"] == {"confirmation_stale": 1}
    assert summary["reminders"]["confirmation_due"] == 1
    deactivated = outbox(engine, Subjects.EXPERT_DEACTIVATED)
    assert len(deactivated) == 1 and deactivated[0].subject_id == stale["id"]
    assert deactivated[0].data["reason_code"] == "confirmation_stale" and deactivated[0].data["reason_ja"]
    assert deactivated[0].entity_version == 2
    # The deactivation also republishes the entry (upserted + published, active false).
    published = [e for e in outbox(engine, Subjects.EXPERT_PUBLISHED) if e.subject_id == stale["id"]]
    assert published[-1].data["active"] is False and published[-1].entity_version == 2
    reminders = outbox(engine, Subjects.EXPERT_CONFIRMATION_DUE)
    assert [e.subject_id for e in reminders if e.data["reason_code"] == "confirmation_due"] == [due_soon["id"]]
    # The status events name the expert's account and name, so the reminder reaches them (issue 8).
    due = next(e for e in reminders if e.data["reason_code"] == "confirmation_due")
    assert due.data["owner_user_id"] == "soon" and due.data["expert_name"] == due_soon["name"]
    assert deactivated[0].data["owner_user_id"] == "stale-expert"
    view = client.get(f"/experts/{stale['id']}", headers=owner).json()
    assert view["active"] is False and view["status"]["reason_code"] == "confirmation_stale"
    written = len(outbox(engine))
    assert written > before

    # A second run changes nothing and does not remind again.
    with Session(engine, expire_on_commit=False) as session:
        again = run_freshness(session, settings)
    assert again["deactivated_total"] == 0 and again["reminders_total"] == 0
    assert len(outbox(engine)) == written

    # One action by the expert brings the entry back, with the reason.
    confirmed = client.post(f"/experts/{stale['id']}/confirm-active", headers=owner)
    assert confirmed.status_code == 200 and confirmed.json()["active"] is True
    reactivated = outbox(engine, Subjects.EXPERT_REACTIVATED)
    assert len(reactivated) == 1 and reactivated[0].data["reason_code"] == "confirmed"
    assert reactivated[0].entity_version == 3


def test_confirmation_cannot_revive_an_expired_registration(client: TestClient, auth: Auth, engine: Engine) -> None:
    owner = auth(Role.EXPERT, "old-timer")
    created = create_listed(
        client, auth, expert_body(registration_date="2017-04-01", renewal_deadline="2020-03-31"), "old-timer"
    ).json()
    assert created["active"] is False and created["status"]["reason_code"] == "registration_expired"
    assert outbox(engine, Subjects.EXPERT_DEACTIVATED)[0].data["reason_code"] == "registration_expired"
    response = client.post(f"/experts/{created['id']}/confirm-active", headers=owner).json()
    assert response["active"] is False and "掲載は停止中" in response["message_ja"]
    # Renewing (a new deadline, regulated data: entered by the operator) brings it back, and says why.
    renewed = client.patch(
        f"/experts/{created['id']}",
        json={"renewal_deadline": "2029-03-31", "training": {"online": ["2026-06-01"], "practical": []}},
        headers=auth(Role.ADMIN),
    ).json()
    assert renewed["active"] is True
    assert outbox(engine, Subjects.EXPERT_REACTIVATED)[-1].data["reason_code"] == "requirements_met"


def test_only_the_owner_or_an_admin_confirms(client: TestClient, auth: Auth) -> None:
    created = client.post("/experts", json=expert_body(), headers=auth(Role.EXPERT, "owner")).json()
    assert (
        client.post(f"/experts/{created['id']}/confirm-active", headers=auth(Role.EXPERT, "other")).status_code == 403
    )
    assert client.post(f"/experts/{created['id']}/confirm-active", headers=auth(Role.BROKER)).status_code == 403
    assert client.post(f"/experts/{created['id']}/confirm-active").status_code == 401
    assert client.post(f"/experts/{created['id']}/confirm-active", headers=auth(Role.ADMIN)).status_code == 200
    assert client.post("/admin/experts/freshness/run", headers=auth(Role.BROKER)).status_code == 403


def test_the_cli_function_runs_the_job(
    client: TestClient, auth: Auth, engine: Engine, settings: ProfilesSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    created = create_listed(client, auth, expert_body(), "cli").json()
    _backdate(engine, created["id"], 365)
    summary = run_freshness_job(settings)
    assert summary["deactivated"] == {"confirmation_stale": 1}
    assert client.get(f"/experts/{created['id']}").json()["active"] is False
