"""The scorer's event (profiles.expert.upserted) carries the マナビDX Quest case-study flag, so matching lets
real learners who finished the case study (2層) join hub project teams, and nobody else (issue 11)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.factories import dx_body
from tests.profiles.conftest import Auth, create_listed, expert_body, outbox
from tsunagu.events import Subjects


def _features(engine: Engine, expert_id: str) -> dict:
    events = [e for e in outbox(engine, Subjects.EXPERT_UPSERTED) if e.data["expert_id"] == expert_id]
    return events[-1].data


def test_a_learner_who_finished_the_case_study_is_flagged(client: TestClient, auth: Auth, engine: Engine) -> None:
    response = create_listed(client, auth, dx_body(), "learner")
    assert response.status_code == 201, response.text
    assert _features(engine, response.json()["id"])["case_study_completed"] is True


def test_a_learner_still_in_the_programme_and_a_sekisupe_are_not(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    programme = {"status": "participant", "cohort_year": 2025, "case_study_completed": False}
    learner = create_listed(client, auth, dx_body(external_id="MDQ-2025-00002", programme=programme), "learner-2")
    assert learner.status_code == 201, learner.text
    assert _features(engine, learner.json()["id"])["case_study_completed"] is False
    sekisupe = create_listed(client, auth, expert_body(), "sekisupe")
    assert sekisupe.status_code == 201, sekisupe.text
    assert _features(engine, sekisupe.json()["id"])["case_study_completed"] is False
