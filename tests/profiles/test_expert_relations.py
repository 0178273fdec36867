"""Conflicts of interest and the employer of an expert (issue 8): the expert declares them, nobody but the
expert and admins reads them, they travel to the scorer in ``profiles.expert.upserted`` (never in the
published event), and the status events name the expert's account so a reminder can reach them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.profiles.conftest import Auth, create_listed, expert_body, outbox
from tsunagu.auth import Role
from tsunagu.events import Subjects


def test_conflicts_and_employer_are_private_and_reach_the_scorer(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    body = expert_body(conflicted_organization_ids=["org-b", "org-a", "org-b"], employer_organization_id="org-e")
    response = create_listed(client, auth, body, "u-rel")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["conflicted_organization_ids"] == ["org-a", "org-b"]
    assert created["employer_organization_id"] == "org-e"

    for role in (Role.BROKER, Role.SME):
        seen = client.get(f"/experts/{created['id']}", headers=auth(role, "someone", prefectures=["13"])).json()
        assert "conflicted_organization_ids" not in seen and "employer_organization_id" not in seen
    assert "conflicted_organization_ids" in client.get(f"/experts/{created['id']}", headers=auth(Role.ADMIN)).json()

    features = outbox(engine, Subjects.EXPERT_UPSERTED)[0].data
    assert features["conflicted_organization_ids"] == ["org-a", "org-b"]
    assert features["employer_organization_id"] == "org-e"
    assert features["owner_user_id"] == "u-rel"
    # What each reader may see, so the scorer's reasons reveal nothing more (defaults: capacity for brokers).
    assert "prefectures" in features["public_fields"] and "capacity" not in features["public_fields"]
    assert "capacity" in features["broker_fields"] and "contact_email" not in features["broker_fields"]
    published = outbox(engine, Subjects.EXPERT_PUBLISHED)[0].data
    assert "conflicted_organization_ids" not in published and "org-e" not in str(published)


def test_a_patch_changes_them_alone_and_a_repeat_changes_nothing(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    headers = auth(Role.EXPERT, "u-patch")
    created = create_listed(client, auth, expert_body(), "u-patch").json()
    assert created["conflicted_organization_ids"] == [] and created["employer_organization_id"] is None

    patch = {"conflicted_organization_ids": ["org-x"]}
    changed = client.patch(f"/experts/{created['id']}", json=patch, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["conflicted_organization_ids"] == ["org-x"] and changed.json()["version"] == 2
    again = client.patch(f"/experts/{created['id']}", json=patch, headers=headers).json()
    assert again["version"] == 2  # nothing changed: no new version, no event
    assert len(outbox(engine, Subjects.EXPERT_UPSERTED)) == 2
    assert outbox(engine, Subjects.EXPERT_UPSERTED)[-1].data["conflicted_organization_ids"] == ["org-x"]

    cleared = client.patch(f"/experts/{created['id']}", json={"employer_organization_id": "org-y"}, headers=headers)
    assert cleared.json()["employer_organization_id"] == "org-y"
    assert cleared.json()["conflicted_organization_ids"] == ["org-x"]  # untouched by a patch that left it out


def test_bad_relations_name_the_field(client: TestClient, auth: Auth) -> None:
    headers = auth(Role.EXPERT, "u-bad")
    response = client.post("/experts", json=expert_body(conflicted_organization_ids=[""]), headers=headers)
    assert response.status_code == 422
    assert "conflicted_organization_ids" in response.text
    response = client.post("/experts", json=expert_body(employer_organization_id="x" * 65), headers=headers)
    assert response.status_code == 422 and "employer_organization_id" in response.text
