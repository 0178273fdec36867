"""Who reads a hub project once a team is formed (issue 11, found by the authorization matrix): the 登録セキスペ
mentor of a security project is told of the team and must be able to read it (before the fix only DX learners
could), while another expert and another mentor still get 404 and see nothing of it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests import factories
from tests.matching.conftest import Auth, envelope, expert_event, project
from tsunagu.auth import Role
from tsunagu.events import Subjects


def test_the_mentor_reads_and_lists_the_team_it_is_in_others_do_not(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    hub = auth(Role.HUB, "hub-47", prefectures=["47"])
    learner = factories.learner_features_data(dss_roles={"cybersecurity": 2}, owner_user_id="learner-user")
    mentor = expert_event(owner_user_id="mentor-user")
    bystander = expert_event(owner_user_id="bystander-user", prefectures=["01"], onsite=False, remote=False)
    project(engine, envelope(Subjects.EXPERT_UPSERTED, learner, subject_id=learner["expert_id"]), mentor, bystander)
    body = factories.project_body(topics=["ransomware"], requirements=[{"role": "cybersecurity", "level": 2}])
    created = client.post("/projects", json=body, headers=hub)
    assert created.status_code == 201, created.text
    path = f"/projects/{created.json()['id']}"
    teams = client.post("/projects/teams", json={"project_ids": [created.json()["id"]]}, headers=hub).json()
    mentors = [m["learner_id"] for m in teams["projects"][0]["members"] if m["role"] == "mentor"]
    assert mentors == [mentor.data["expert_id"]]
    assert client.post(path + "/team/confirm", headers=hub).status_code == 200

    as_mentor = client.get(path, headers=auth(Role.EXPERT, "mentor-user"))
    assert as_mentor.status_code == 200, as_mentor.text
    assert mentor.data["expert_id"] in {m["learner_id"] for m in as_mentor.json()["members"]}
    listed = client.get("/projects", headers=auth(Role.EXPERT, "mentor-user")).json()
    assert [p["id"] for p in listed["items"]] == [created.json()["id"]]
    assert client.get(path, headers=auth(Role.EXPERT, "learner-user")).status_code == 200

    denied = client.get(path, headers=auth(Role.EXPERT, "bystander-user"))
    assert denied.status_code == 404 and created.json()["id"] not in denied.text
    # An expert with a profile but in no team lists nothing (not another's project).
    assert client.get("/projects", headers=auth(Role.EXPERT, "bystander-user")).json()["items"] == []
    assert client.get("/projects", headers=auth(Role.EXPERT, "no-profile")).status_code == 403
