"""マナビDX Quest hub projects over HTTP: hub staff create projects and form teams optimally (roles and levels
covered, one project per person, region or remote, interest counted, a 登録セキスペ mentor for security
projects, pins and exclusions kept), confirm them; only case-study graduates join; others get 403/404."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.matching.assignment import (
    Learner,
    TeamInstance,
    TeamProject,
    brute_force_teams,
    solve_teams,
    team_objective,
)
from tests import factories
from tests.matching.conftest import Auth, envelope, expert_event, field_names, outbox, project
from tsunagu.auth import Role
from tsunagu.events import Subjects


def _hub(auth: Auth) -> dict[str, str]:
    return auth(Role.HUB, "hub-47", prefectures=["47"])


def _learners(engine: Engine, *overrides: dict) -> list[str]:
    events = []
    for override in overrides:
        data = factories.learner_features_data(**override)
        events.append(envelope(Subjects.EXPERT_UPSERTED, data, subject_id=data["expert_id"]))
    project(engine, *events)
    return [event.data["expert_id"] for event in events]


def _project(client: TestClient, auth: Auth, **overrides) -> dict:
    response = client.post("/projects", json=factories.project_body(**overrides), headers=_hub(auth))
    assert response.status_code == 201, response.text
    return response.json()


def test_hub_staff_form_a_team_that_covers_the_roles(client: TestClient, auth: Auth, engine: Engine) -> None:
    scientist, engineer, other, graduate_elsewhere, not_graduated = _learners(
        engine,
        {"dss_roles": {"data_scientist": 3}, "owner_user_id": "learner-1"},
        {"dss_roles": {"software_engineer": 2}},
        {"dss_roles": {"designer": 2}},
        {"dss_roles": {"data_scientist": 4}, "prefectures": ["01"], "remote": False},
        {"dss_roles": {"data_scientist": 4}, "case_study_completed": False},
    )
    created = _project(client, auth)
    assert created["state"] == "open" and created["sme_name"] == "株式会社沖縄テスト食品"
    response = client.post("/projects/teams", json={"project_ids": [created["id"]]}, headers=_hub(auth))
    assert response.status_code == 200, response.text
    teams = response.json()
    assert teams["status"] == "optimal"
    [team] = teams["projects"]
    members = {m["learner_id"]: m for m in team["members"]}
    assert set(members) == {scientist, engineer, other}  # three places, three who may join
    assert not_graduated not in members and graduate_elsewhere not in members
    assert "データサイエンティスト" in members[scientist]["reason_ja"] and team["uncovered_ja"] == []
    assert team["state"] == "team_proposed"
    [event] = outbox(engine, Subjects.PROJECT_TEAM_PROPOSED)
    assert event.data["project_id"] == created["id"] and event.data["sme_name"] is None  # not public
    confirmed = client.post(f"/projects/{created['id']}/team/confirm", headers=_hub(auth))
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "team_confirmed"
    assert {m["state"] for m in confirmed.json()["members"]} == {"confirmed"}
    [told] = outbox(engine, Subjects.PROJECT_TEAM_CONFIRMED)
    assert "learner-1" in told.data["member_user_ids"]
    assert client.post(f"/projects/{created['id']}/team/confirm", headers=_hub(auth)).status_code == 409


def test_a_cohort_at_once_each_person_in_one_project_interest_counts(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    a, b = _learners(
        engine,
        {"dss_roles": {"data_scientist": 2}, "owner_user_id": "learner-a"},
        {"dss_roles": {"data_scientist": 2}, "owner_user_id": "learner-b"},
    )
    first = _project(client, auth, team_size=1, requirements=[{"role": "data_scientist", "level": 2}])
    second = _project(
        client, auth, team_size=1, requirements=[{"role": "data_scientist", "level": 2}], title="不良検出"
    )
    # b wants the second project: interest decides between two equal fits.
    response = client.post(f"/projects/{second['id']}/interests", json={}, headers=auth(Role.EXPERT, "learner-b"))
    assert response.status_code == 201 and response.json()["interest_count"] == 1
    teams = client.post("/projects/teams", json={"cohort": "2026"}, headers=_hub(auth)).json()
    placed = {p["id"]: [m["learner_id"] for m in p["members"]] for p in teams["projects"]}
    assert placed == {first["id"]: [a], second["id"]: [b]}
    assert "関心" in next(p for p in teams["projects"] if p["id"] == second["id"])["members"][0]["reason_ja"]


def test_pins_and_exclusions_are_kept_when_solving_again(client: TestClient, auth: Auth, engine: Engine) -> None:
    strong, weak = _learners(engine, {"dss_roles": {"data_scientist": 3}}, {"dss_roles": {"designer": 1}})
    created = _project(client, auth, team_size=1)
    first = client.post("/projects/teams", json={"project_ids": [created["id"]]}, headers=_hub(auth)).json()
    assert [m["learner_id"] for m in first["projects"][0]["members"]] == [strong]
    pinned = client.post(
        "/projects/teams",
        json={"project_ids": [created["id"]], "pins": [{"project_id": created["id"], "learner_id": weak}]},
        headers=_hub(auth),
    ).json()
    assert [m["learner_id"] for m in pinned["projects"][0]["members"]] == [weak]
    assert "固定" in pinned["projects"][0]["members"][0]["reason_ja"]
    again = client.post("/projects/teams", json={"project_ids": [created["id"]]}, headers=_hub(auth)).json()
    assert [m["learner_id"] for m in again["projects"][0]["members"]] == [weak]
    excluded = client.post(
        "/projects/teams",
        json={"project_ids": [created["id"]], "exclusions": [{"project_id": created["id"], "learner_id": weak}]},
        headers=_hub(auth),
    ).json()
    assert [m["learner_id"] for m in excluded["projects"][0]["members"]] == [strong]


def test_a_security_project_gets_a_registered_specialist_as_mentor(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    _learners(engine, {"dss_roles": {"cybersecurity": 2}})
    mentor = expert_event(owner_user_id="mentor-user")
    conflicted = expert_event(display_name="利益相反")
    project(engine, mentor, conflicted)
    created = _project(client, auth, topics=["ransomware"], requirements=[{"role": "cybersecurity", "level": 2}])
    teams = client.post("/projects/teams", json={"project_ids": [created["id"]]}, headers=_hub(auth)).json()
    mentors = [m for m in teams["projects"][0]["members"] if m["role"] == "mentor"]
    assert len(mentors) == 1 and mentors[0]["learner_id"] in {mentor.data["expert_id"], conflicted.data["expert_id"]}
    assert "登録セキスペ" in mentors[0]["reason_ja"]


def test_the_team_solver_matches_brute_force() -> None:
    rng = random.Random(3)
    roles = ["data_scientist", "software_engineer", "designer"]
    for _ in range(120):
        projects = [
            TeamProject(
                f"p{i}",
                rng.randint(1, 3),
                tuple((role, rng.randint(1, 3)) for role in rng.sample(roles, rng.randint(0, 2))),
                rng.random() < 0.4,
            )
            for i in range(rng.randint(1, 3))
        ]
        learners = [
            Learner(f"l{j}", {r: rng.randint(1, 3) for r in roles if rng.random() < 0.5})
            for j in range(rng.randint(1, 5))
        ]
        fit = {
            (learner.learner_id, p.project_id): rng.randint(0, 100)
            for learner in learners
            for p in projects
            if rng.random() < 0.7
        }
        mentor_fit = {
            (f"m{k}", p.project_id): rng.randint(0, 100) for k in range(2) for p in projects if rng.random() < 0.6
        }
        instance = TeamInstance(projects, learners, fit, mentor_fit, {"m0": rng.randint(0, 2), "m1": 1})
        solution = solve_teams(instance)
        assert (
            solution.objective
            == brute_force_teams(instance)
            == team_objective(instance, solution.members, solution.mentors)
        )
        placed = [i for ids in solution.members.values() for i in ids]
        assert len(placed) == len(set(placed))


def test_who_may_create_read_and_solve(client: TestClient, auth: Auth, engine: Engine) -> None:
    body = factories.project_body()
    for headers in (
        auth(Role.BROKER, prefectures=["47"]),
        auth(Role.SME),
        auth(Role.EXPERT),
        auth(Role.HUB, prefectures=["13"]),
    ):
        assert client.post("/projects", json=body, headers=headers).status_code == 403
    created = _project(client, auth, sme_name_public=True)
    path = f"/projects/{created['id']}"
    assert client.get(path, headers=auth(Role.BROKER, prefectures=["47"])).json()["sme_name"]
    for headers in (
        auth(Role.BROKER, prefectures=["13"]),
        auth(Role.HUB, prefectures=["13"]),
        auth(Role.SME, "stranger"),
        auth(Role.EXPERT, "no-profile"),
    ):
        assert client.get(path, headers=headers).status_code == 404
    assert client.get("/projects", headers=auth(Role.BROKER, prefectures=["47"])).json()["total"] == 1
    assert client.get("/projects", headers=auth(Role.HUB, prefectures=["13"])).json()["total"] == 0
    teams = {"project_ids": [created["id"]]}
    assert client.post("/projects/teams", json=teams, headers=auth(Role.BROKER, prefectures=["47"])).status_code == 403
    assert client.post("/projects/teams", json=teams, headers=auth(Role.HUB, prefectures=["13"])).status_code == 404
    assert client.post(path + "/team/confirm", headers=auth(Role.BROKER, prefectures=["47"])).status_code == 403
    [event] = outbox(engine, Subjects.PROJECT_CREATED)
    assert event.data["sme_name"] == created["sme_name"] and event.data["prefecture"] == "47"


def test_only_case_study_graduates_state_interest(client: TestClient, auth: Auth, engine: Engine) -> None:
    _learners(engine, {"owner_user_id": "not-yet", "case_study_completed": False})
    created = _project(client, auth)
    response = client.post(f"/projects/{created['id']}/interests", json={}, headers=auth(Role.EXPERT, "not-yet"))
    assert response.status_code == 409 and "ケーススタディ" in response.json()["error"]["message_ja"]
    assert client.post(f"/projects/{created['id']}/interests", json={}, headers=auth(Role.SME)).status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"topics": []}, "topics"),
        ({"topics": ["no_such_topic"]}, "topics"),
        ({"requirements": [{"role": "wizard", "level": 2}]}, "requirements.0.role"),
        ({"requirements": [{"role": "designer", "level": 9}]}, "requirements.0.level"),
        ({"requirements": [{"role": "designer", "level": 1}, {"role": "designer", "level": 2}]}, "requirements"),
        ({"team_size": 0}, "team_size"),
        ({"prefecture": "火星"}, "prefecture"),
        ({"organization_id": "no-such-organisation"}, "organization_id"),
    ],
)
def test_bad_projects_are_refused_with_the_field(client: TestClient, auth: Auth, change: dict, field: str) -> None:
    response = client.post("/projects", json=factories.project_body(**change), headers=_hub(auth))
    assert response.status_code == 422, response.text
    assert field_names(response) == {field}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "project_ids"),
        ({"project_ids": "x"}, "project_ids"),
        ({"cohort": "2026", "pins": [{"project_id": "nope", "learner_id": "x"}]}, "pins"),
    ],
)
def test_bad_team_requests_are_refused_with_the_field(client: TestClient, auth: Auth, body: dict, field: str) -> None:
    _project(client, auth)
    response = client.post("/projects/teams", json=body, headers=_hub(auth))
    assert response.status_code == 422, response.text
    assert field_names(response) == {field}
