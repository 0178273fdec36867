"""What a published 相談会 tells the notifier (issue 11): the venue, and for each SME left without a meeting the
reason a broker gave it in the plan, so the gateway can tell them from the event alone."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests import factories
from tests.matching.conftest import Auth, expert_event, outbox, project
from tsunagu.auth import Role
from tsunagu.events import Subjects


def test_the_published_event_carries_the_venue_and_why_each_unserved_sme_got_no_meeting(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    expert = expert_event(owner_user_id="expert-user")
    project(engine, expert)
    broker = auth(Role.BROKER, "broker-47", prefectures=["47"])
    body = factories.session_body(
        [expert.data["expert_id"]], experts=[{"expert_id": expert.data["expert_id"], "max_meetings": 1}]
    )
    day = client.post("/sessions", json=body, headers=broker).json()
    ids = {}
    for user, topics in (("sme-served", ["ransomware"]), ("sme-unserved", ["bec"])):
        response = client.post(
            f"/sessions/{day['id']}/registrations",
            json=factories.registration_body(topics=topics),
            headers=auth(Role.SME, user),
        )
        assert response.status_code == 201, response.text
        ids[user] = response.json()["id"]
    plan = client.post(f"/sessions/{day['id']}/assignment", headers=broker).json()
    [event] = outbox(engine, Subjects.SESSION_PUBLISHED)
    assert event.data["venue"] == "那覇商工会議所"
    assert [(m["sme_user_id"], m["expert_user_id"]) for m in event.data["meetings"]] == [("sme-served", "expert-user")]
    [unserved] = event.data["unserved"]
    assert unserved["sme_user_id"] == "sme-unserved" and unserved["registration_id"] == ids["sme-unserved"]
    assert unserved["reason_ja"] == plan["unserved"][0]["reason_ja"] and unserved["reason_en"]
    assert event.data["unserved_sme_user_ids"] == ["sme-unserved"]
