"""The brokering workflow over HTTP against a real database: proposal → acceptance → confirmation →
engagement → completion → ratings; who may take each step (404 for whoever may not know the object,
403 for a reader with no part in it), the 409 reasons in Japanese and English, the quota, the history,
the expiry job, and the events each transition leaves in the outbox for the people concerned."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.matching import jobs
from services.matching.settings import MatchingSettings
from tests.factories import request_body
from tests.matching.conftest import Auth, expert_event, organization_event, outbox, project
from tsunagu.auth import Role
from tsunagu.db import utcnow
from tsunagu.events import Subjects

ORG = "org-okinawa"


@pytest.fixture
def world(client: TestClient, auth: Auth, engine: Engine) -> dict[str, Any]:
    """An SME organisation in Okinawa (members sme-1, sme-2), two experts with accounts, a broker for
    Okinawa, and one submitted request of sme-1's organisation."""
    project(
        engine,
        organization_event(organization_id=ORG, member_user_ids=["sme-1", "sme-2"]),
        expert_event(expert_id="exp-a", owner_user_id="expert-a", display_name="専門家A"),
        expert_event(expert_id="exp-b", owner_user_id="expert-b", display_name="専門家B"),
    )
    sme = auth(Role.SME, "sme-1")
    request = client.post("/requests", json=request_body(organization_id=ORG), headers=sme)
    assert request.status_code == 201, request.text
    return {
        "request": request.json(),
        "sme": sme,
        "sme2": auth(Role.SME, "sme-2"),
        "broker": auth(Role.BROKER, "broker-1", prefectures=["47"]),
        "expert_a": auth(Role.EXPERT, "expert-a"),
        "expert_b": auth(Role.EXPERT, "expert-b"),
    }


def propose(client: TestClient, world: dict, expert_id: str = "exp-a", **kwargs: Any):
    headers = kwargs.pop("headers", world["broker"])
    return client.post(
        f"/requests/{world['request']['id']}/proposals",
        json={"expert_id": expert_id, "message": "よろしくお願いします"},
        headers=headers,
    )


def test_from_proposal_to_a_rated_engagement(client: TestClient, world: dict, engine: Engine) -> None:
    request_id = world["request"]["id"]
    a = propose(client, world)
    assert a.status_code == 201, a.text
    assert a.json()["state"] == "proposed" and a.json()["request_id"] == request_id and a.json()["expires_at"]
    b = propose(client, world, "exp-b").json()

    assert client.post(f"/proposals/{a.json()['id']}/accept", headers=world["expert_a"]).json()["state"] == "accepted"
    confirmed = client.post(f"/proposals/{a.json()['id']}/confirm", headers=world["sme2"])
    assert confirmed.status_code == 200, confirmed.text
    engagement_id = confirmed.json()["engagement_id"]
    assert confirmed.json()["state"] == "confirmed" and engagement_id

    # The other expert's proposal was closed, with the reason they read.
    other = client.get(f"/proposals/{b['id']}", headers=world["expert_b"]).json()
    assert other["state"] == "closed" and other["reason"] == "他の専門家に決定しました"
    assert client.get(f"/requests/{request_id}", headers=world["sme"]).json()["status"] == "matched"

    engagement = client.get(f"/engagements/{engagement_id}", headers=world["expert_a"]).json()
    assert engagement["state"] == "active" and engagement["expert_name"] == "専門家A"
    # Not completed yet: no rating.
    early = client.post(f"/engagements/{engagement_id}/ratings", json={"stars": 5}, headers=world["sme"])
    assert early.status_code == 409 and "完了してから" in early.json()["error"]["message_ja"]

    done = client.post(f"/engagements/{engagement_id}/complete", headers=world["sme"])
    assert done.json()["state"] == "completed" and done.json()["completed_at"]
    assert client.get(f"/requests/{request_id}", headers=world["sme"]).json()["status"] == "completed"
    rated = client.post(
        f"/engagements/{engagement_id}/ratings", json={"stars": 4, "comment": "丁寧でした"}, headers=world["sme"]
    )
    assert rated.status_code == 201 and rated.json()["ratings"][0]["side"] == "sme"
    assert (
        client.post(f"/engagements/{engagement_id}/ratings", json={"stars": 5}, headers=world["expert_a"]).status_code
        == 201
    )
    again = client.post(f"/engagements/{engagement_id}/ratings", json={"stars": 1}, headers=world["sme2"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_rated"

    # The outbox holds every transition, with the people concerned.
    [closed] = outbox(engine, Subjects.PROPOSAL_CLOSED)
    assert closed.data["expert_user_id"] == "expert-b" and closed.data["broker_id"] == "broker-1"
    assert closed.data["sme_user_ids"] == ["sme-1", "sme-2"]
    [created] = outbox(engine, Subjects.ENGAGEMENT_CREATED)
    assert created.data["expert_user_id"] == "expert-a" and created.data["engagement_id"] == engagement_id
    stars = sorted(e.data["stars"] for e in outbox(engine, Subjects.ENGAGEMENT_RATED))
    assert stars == [4, 5]
    for subject in (
        Subjects.PROPOSAL_PROPOSED,
        Subjects.PROPOSAL_ACCEPTED,
        Subjects.PROPOSAL_CONFIRMED,
        Subjects.REQUEST_MATCHED,
        Subjects.ENGAGEMENT_COMPLETED,
        Subjects.REQUEST_COMPLETED,
    ):
        assert outbox(engine, subject), subject

    with Session(engine) as session:
        from services.matching import repository

        assert repository.rating_stats(session) == {"exp-a": (1, 4.0)}
        assert repository.open_load_by_expert(session) == {}

    # The history: every step, oldest first, who and why.
    history = client.get(f"/requests/{request_id}/history", headers=world["broker"]).json()
    steps = [(row["object_type"], row["from_state"], row["to_state"]) for row in history]
    assert steps[0] == ("request", None, "submitted")
    assert ("proposal", "proposed", "accepted") in steps and ("proposal", "accepted", "confirmed") in steps
    assert ("engagement", "active", "completed") in steps and steps[-1] == ("request", "matched", "completed")
    # The expert not chosen reads only the rows of their own proposal.
    theirs = client.get(f"/requests/{request_id}/history", headers=world["expert_b"]).json()
    assert {row["object_id"] for row in theirs} == {b["id"]}
    assert client.get(f"/requests/{request_id}/history", headers=world["sme"] | {}).status_code == 200
    assert client.get(f"/requests/{request_id}/history", headers=client.headers).status_code == 401


def test_who_may_propose(client: TestClient, world: dict, auth: Auth, engine: Engine) -> None:
    assert propose(client, world, headers=auth(Role.BROKER, "broker-2", prefectures=["13"])).status_code == 404
    assert propose(client, world, headers=auth(Role.HUB, "hub-1", prefectures=["47"])).status_code == 403
    assert propose(client, world, headers=world["sme"]).status_code == 403
    assert propose(client, world, headers=world["expert_a"]).status_code == 404
    assert outbox(engine, Subjects.PROPOSAL_PROPOSED) == []
    assert propose(client, world, headers=auth(Role.ADMIN, "admin")).status_code == 201


@pytest.mark.parametrize(
    ("expert", "code", "words"),
    [
        ({"active": False}, "expert_inactive", "無効"),
        (
            {"registration_expires_on": (date.today() - timedelta(days=2)).isoformat()},
            "registration_expired",
            "有効期限",
        ),
        ({"capacity": 0}, "expert_full", "受入れ可能な件数"),
        ({"conflicted_organization_ids": [ORG]}, "conflict_of_interest", "利益相反"),
        ({"employer_organization_id": ORG}, "conflict_of_interest", "利益相反"),
    ],
)
def test_an_ineligible_expert_is_refused_with_the_reason(
    client: TestClient, world: dict, engine: Engine, expert: dict, code: str, words: str
) -> None:
    project(engine, expert_event(expert_id="exp-x", owner_user_id="expert-x", **expert))
    response = propose(client, world, "exp-x")
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message_ja"] and error["message_en"]
    assert outbox(engine, Subjects.PROPOSAL_PROPOSED) == []


def test_unknown_and_already_proposed_experts(client: TestClient, world: dict) -> None:
    assert propose(client, world, "no-such-expert").status_code == 404
    assert propose(client, world).status_code == 201
    again = propose(client, world)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_proposed"


def test_only_the_proposed_expert_answers(client: TestClient, world: dict, auth: Auth, engine: Engine) -> None:
    proposal = propose(client, world).json()
    path = f"/proposals/{proposal['id']}"
    # Someone with no sight of it: 404 and none of its data; a reader with no part: 403.
    for headers in (world["expert_b"], auth(Role.SME, "sme-9"), auth(Role.BROKER, "b2", prefectures=["13"])):
        response = client.post(path + "/accept", headers=headers)
        assert response.status_code == 404 and proposal["id"] not in response.text
        assert client.get(path, headers=headers).status_code == 404
    for headers in (world["sme"], world["broker"]):
        assert client.post(path + "/accept", headers=headers).status_code == 403
    missing_reason = client.post(path + "/decline", json={}, headers=world["expert_a"])
    assert missing_reason.status_code == 422 and missing_reason.json()["error"]["fields"][0]["field"] == "reason"
    declined = client.post(path + "/decline", json={"reason": "日程が合いません"}, headers=world["expert_a"])
    assert declined.json()["state"] == "declined" and declined.json()["reason"] == "日程が合いません"
    # From a final state: 409 in both languages, nothing changed.
    late = client.post(path + "/accept", headers=world["expert_a"])
    assert late.status_code == 409 and "専門家が辞退" in late.json()["error"]["message_ja"]
    assert len(outbox(engine, Subjects.PROPOSAL_ACCEPTED)) == 0
    # Declined: the expert may be proposed again.
    assert propose(client, world).status_code == 201


def test_confirm_only_after_acceptance_by_the_sme(client: TestClient, world: dict) -> None:
    proposal = propose(client, world).json()
    path = f"/proposals/{proposal['id']}"
    early = client.post(path + "/confirm", headers=world["sme"])
    assert early.status_code == 409 and early.json()["error"]["code"] == "invalid_transition"
    client.post(path + "/accept", headers=world["expert_a"])
    assert client.post(path + "/confirm", headers=world["broker"]).status_code == 403
    assert client.post(path + "/confirm", headers=world["expert_a"]).status_code == 403
    withdrawn = client.post(path + "/withdraw", headers=world["broker"])
    assert withdrawn.json()["state"] == "withdrawn"
    assert client.post(path + "/confirm", headers=world["sme"]).status_code == 409


def test_cancelling_an_engagement_frees_the_expert_and_reopens_the_request(client: TestClient, world: dict) -> None:
    proposal = propose(client, world).json()
    client.post(f"/proposals/{proposal['id']}/accept", headers=world["expert_a"])
    engagement_id = client.post(f"/proposals/{proposal['id']}/confirm", headers=world["sme"]).json()["engagement_id"]
    assert client.post(f"/engagements/{engagement_id}/cancel", json={}, headers=world["sme"]).status_code == 422
    cancelled = client.post(
        f"/engagements/{engagement_id}/cancel", json={"reason": "社内事情"}, headers=world["expert_a"]
    )
    assert cancelled.json()["state"] == "cancelled"
    assert client.get(f"/requests/{world['request']['id']}", headers=world["sme"]).json()["status"] == "ranked"
    assert propose(client, world).status_code == 201  # open again, the expert proposable again


def test_the_fiscal_year_quota_is_enforced_at_confirmation(
    client: TestClient, auth: Auth, engine: Engine, settings: MatchingSettings
) -> None:
    project(
        engine,
        organization_event(organization_id=ORG, member_user_ids=["sme-1"]),
        expert_event(expert_id="exp-q", owner_user_id="expert-q", capacity=10),
    )
    sme, broker, expert = (
        auth(Role.SME, "sme-1"),
        auth(Role.BROKER, "b", prefectures=["47"]),
        auth(Role.EXPERT, "expert-q"),
    )
    results = []
    for _ in range(4):
        request = client.post("/requests", json=request_body(organization_id=ORG), headers=sme).json()
        proposal = client.post(
            f"/requests/{request['id']}/proposals", json={"expert_id": "exp-q"}, headers=broker
        ).json()
        client.post(f"/proposals/{proposal['id']}/accept", headers=expert)
        results.append(client.post(f"/proposals/{proposal['id']}/confirm", headers=sme))
    assert [r.status_code for r in results] == [200, 200, 200, 409]
    assert results[-1].json()["error"]["message_ja"] == "今年度の無料相談の上限（3件）に達しています"


def test_drafts_submit_edit_and_cancel(client: TestClient, auth: Auth, engine: Engine, world: dict) -> None:
    sme = world["sme"]
    draft = client.post("/requests", json=request_body(draft=True), headers=sme).json()
    assert draft["status"] == "draft"
    assert client.get(f"/requests/{draft['id']}", headers=world["broker"]).status_code == 404
    before = len(outbox(engine, Subjects.REQUEST_SUBMITTED))
    edited = client.patch(f"/requests/{draft['id']}", json={"title": "バックアップ体制"}, headers=sme).json()
    assert edited["status"] == "draft" and edited["title"] == "バックアップ体制"
    assert len(outbox(engine, Subjects.REQUEST_SUBMITTED)) == before
    assert client.post(f"/requests/{draft['id']}/submit", headers=sme).json()["status"] == "submitted"
    assert len(outbox(engine, Subjects.REQUEST_SUBMITTED)) == before + 1

    # Editing an open request re-ranks it (a new submitted event); bad input names the field.
    bad = client.patch(f"/requests/{draft['id']}", json={"prefecture": "火星県"}, headers=sme)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "prefecture"
    assert client.patch(f"/requests/{draft['id']}", json={"skills": ["Zero Trust"]}, headers=sme).status_code == 200
    assert len(outbox(engine, Subjects.REQUEST_SUBMITTED)) == before + 2
    assert client.patch(f"/requests/{draft['id']}", json={"title": "x"}, headers=world["broker"]).status_code == 403

    request_id = world["request"]["id"]
    proposal = propose(client, world).json()
    assert client.post(f"/requests/{request_id}/cancel", json={}, headers=sme).status_code == 422
    cancelled = client.post(f"/requests/{request_id}/cancel", json={"reason": "予算がつきませんでした"}, headers=sme)
    assert cancelled.json()["status"] == "cancelled"
    closed = client.get(f"/proposals/{proposal['id']}", headers=world["expert_a"]).json()
    assert closed["state"] == "closed"
    [event] = outbox(engine, Subjects.REQUEST_CANCELLED)
    assert event.data["reason"] == "予算がつきませんでした" and event.data["sme_user_ids"] == ["sme-1", "sme-2"]
    refused = client.patch(f"/requests/{request_id}", json={"title": "y"}, headers=sme)
    assert refused.status_code == 409 and "取消し" in refused.json()["error"]["message_ja"]


def test_lists_show_each_caller_their_own(client: TestClient, world: dict, auth: Auth) -> None:
    a = propose(client, world).json()
    propose(client, world, "exp-b")
    assert [p["id"] for p in client.get("/proposals", headers=world["expert_a"]).json()["items"]] == [a["id"]]
    assert client.get("/proposals", headers=world["broker"]).json()["total"] == 2
    assert client.get("/proposals", headers=world["sme2"]).json()["total"] == 2
    assert client.get("/proposals", headers=auth(Role.SME, "sme-9")).json()["total"] == 0
    assert client.get("/proposals", headers=auth(Role.BROKER, "b", prefectures=["13"])).json()["total"] == 0
    path = f"/requests/{world['request']['id']}/proposals"
    assert client.get(path, headers=world["sme"]).json()["total"] == 2
    assert client.get(path, headers=world["expert_b"]).json()["total"] == 1
    assert client.get(path, headers=auth(Role.EXPERT, "nobody")).status_code == 404
    assert client.get("/proposals?state=bogus", headers=world["broker"]).status_code == 422
    assert client.get("/engagements", headers=world["sme"]).json()["total"] == 0


def test_the_expiry_job_expires_unanswered_proposals_once(
    client: TestClient, world: dict, engine: Engine, settings: MatchingSettings
) -> None:
    stale = propose(client, world).json()
    answered = propose(client, world, "exp-b").json()
    client.post(f"/proposals/{answered['id']}/accept", headers=world["expert_b"])
    assert jobs.expire_due(engine) == 0  # nothing due yet
    later = utcnow() + timedelta(days=settings.proposal_ttl_days, minutes=1)
    assert jobs.expire_due(engine, later) == 1
    assert jobs.expire_due(engine, later) == 0
    assert client.get(f"/proposals/{stale['id']}", headers=world["broker"]).json()["state"] == "expired"
    assert client.get(f"/proposals/{answered['id']}", headers=world["broker"]).json()["state"] == "accepted"
    [event] = outbox(engine, Subjects.PROPOSAL_EXPIRED)
    assert event.data["actor_id"] == "system" and event.data["expert_user_id"] == "expert-a"
    history = client.get(f"/requests/{world['request']['id']}/history", headers=world["sme"]).json()
    assert history[-1]["actor_role"] == "system" and history[-1]["to_state"] == "expired"
