"""Regulated data (issue 9): the registration number and date, the renewal deadline and the training record are
written only by the operator or the import; an expert's change is refused naming the field, and the expert
files a correction request (field, proposed value, reason) that an admin accepts or rejects."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.profiles.conftest import Auth, create_listed, expert_body, field_names, outbox
from tsunagu.auth import Role
from tsunagu.events import Subjects

REGULATED_PATCHES = [
    ({"registration_number": "765432"}, "registration_number"),
    ({"registration_date": "2023-04-01"}, "registration_date"),
    ({"renewal_deadline": "2029-03-31"}, "renewal_deadline"),
    ({"training": {"online": ["2025-06-01"], "practical": []}}, "training"),
]


@pytest.fixture
def entry(client: TestClient, auth: Auth) -> dict:
    return create_listed(client, auth, expert_body(), "owner").json()


@pytest.mark.parametrize(("patch", "field"), REGULATED_PATCHES)
def test_the_expert_may_not_write_regulated_data(
    client: TestClient, auth: Auth, engine: Engine, entry: dict, patch: dict, field: str
) -> None:
    written = len(outbox(engine))
    refused = client.patch(f"/experts/{entry['id']}", json=patch, headers=auth(Role.EXPERT, "owner"))
    assert refused.status_code == 422 and field_names(refused) == {field}
    assert refused.json()["error"]["code"] == "regulated_field"
    assert "corrections" in refused.json()["error"]["fields"][0]["message_en"]
    assert len(outbox(engine)) == written
    assert client.get(f"/experts/{entry['id']}").json()["version"] == entry["version"]
    # The admin may.
    assert client.patch(f"/experts/{entry['id']}", json=patch, headers=auth(Role.ADMIN)).status_code == 200


def test_sending_the_stored_values_again_is_no_change(client: TestClient, auth: Auth, entry: dict) -> None:
    same = {"registration_number": "第０１２３４５号", "registration_date": "2024-04-01", "bio": "更新"}
    response = client.patch(f"/experts/{entry['id']}", json=same, headers=auth(Role.EXPERT, "owner"))
    assert response.status_code == 200 and response.json()["bio"] == "更新"


def test_a_correction_request_accepted_by_the_admin(
    client: TestClient, auth: Auth, engine: Engine, entry: dict
) -> None:
    owner = auth(Role.EXPERT, "owner")
    url = f"/experts/{entry['id']}/corrections"
    body = {"field": "registration_date", "proposed_value": "2024-04-02", "reason": "登録証の日付は4月2日です"}
    filed = client.post(url, json=body, headers=owner)
    assert filed.status_code == 201, filed.text
    correction = filed.json()
    assert correction["proposed_value"] == "2024-04-02" and correction["current_value"] == "2024-04-01"
    assert correction["status"] == "open"
    # Filing changes nothing yet.
    assert client.get(f"/experts/{entry['id']}").json()["registration_date"] == "2024-04-01"
    assert client.get(url, headers=owner).json()["total"] == 1
    for outsider in (auth(Role.EXPERT, "other"), auth(Role.BROKER, "b", prefectures=["13"]), auth(Role.SME)):
        assert client.get(url, headers=outsider).status_code == 404
        assert client.post(url, json=body, headers=outsider).status_code == 404

    admin = auth(Role.ADMIN, "admin-1")
    assert client.get("/admin/experts/corrections", headers=owner).status_code == 403
    assert client.post(f"/admin/experts/corrections/{correction['id']}/accept", headers=owner).status_code == 403
    listed = client.get("/admin/experts/corrections", headers=admin).json()
    assert [item["id"] for item in listed["items"]] == [correction["id"]]
    accepted = client.post(f"/admin/experts/corrections/{correction['id']}/accept", headers=admin)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert accepted.json()["decided_by"] == "admin-1"
    view = client.get(f"/experts/{entry['id']}").json()
    assert view["registration_date"] == "2024-04-02" and view["version"] == entry["version"] + 1
    assert outbox(engine, Subjects.EXPERT_PUBLISHED)[-1].entity_version == view["version"]
    told = outbox(engine, Subjects.EXPERT_CORRECTION_DECIDED)[-1]
    assert told.data["user_id"] == "owner" and told.data["decision"] == "accepted"
    assert client.post(f"/admin/experts/corrections/{correction['id']}/accept", headers=admin).status_code == 409


def test_a_correction_request_rejected_with_a_reason(
    client: TestClient, auth: Auth, engine: Engine, entry: dict
) -> None:
    owner = auth(Role.EXPERT, "owner")
    body = {
        "field": "training",
        "proposed_value": {"online": ["2025-06-01"], "practical": ["2025-09-01"]},
        "reason": "実践講習を受講しました",
    }
    correction = client.post(f"/experts/{entry['id']}/corrections", json=body, headers=owner).json()
    rejected = client.post(
        f"/admin/experts/corrections/{correction['id']}/reject",
        json={"reason": "修了証を確認できません"},
        headers=auth(Role.ADMIN),
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert client.get(f"/experts/{entry['id']}").json()["version"] == entry["version"]
    told = outbox(engine, Subjects.EXPERT_CORRECTION_DECIDED)[-1]
    assert told.data["decision"] == "rejected" and told.data["reason"] == "修了証を確認できません"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"field": "name", "proposed_value": "x", "reason": "r"}, "field"),
        ({"field": "registration_number", "proposed_value": "12AB", "reason": "r"}, "registration_number"),
        ({"field": "registration_number", "proposed_value": "012345", "reason": "r"}, "proposed_value"),
        ({"field": "renewal_deadline", "proposed_value": "2020-01-01", "reason": "r"}, "renewal_deadline"),
        ({"field": "registration_date", "proposed_value": "2099-01-01", "reason": "r"}, "registration_date"),
        ({"field": "registration_date", "proposed_value": "2024-04-02"}, "reason"),
        ({"field": "registration_date", "proposed_value": "2024-04-02", "reason": "r", "x": 1}, "x"),
    ],
)
def test_a_bad_correction_names_the_field_and_writes_nothing(
    client: TestClient, auth: Auth, engine: Engine, entry: dict, body: dict, field: str
) -> None:
    response = client.post(f"/experts/{entry['id']}/corrections", json=body, headers=auth(Role.EXPERT, "owner"))
    assert response.status_code == 422 and field in field_names(response), response.text
    assert client.get(f"/experts/{entry['id']}/corrections", headers=auth(Role.ADMIN)).json()["total"] == 0


def test_accepting_a_number_another_entry_holds_is_a_409(client: TestClient, auth: Auth, entry: dict) -> None:
    body = {"field": "registration_number", "proposed_value": "222222", "reason": "番号の誤記"}
    correction = client.post(f"/experts/{entry['id']}/corrections", json=body, headers=auth(Role.EXPERT, "owner"))
    create_listed(client, auth, expert_body(registration_number="222222"), "someone")
    clash = client.post(f"/admin/experts/corrections/{correction.json()['id']}/accept", headers=auth(Role.ADMIN))
    assert clash.status_code == 409 and field_names(clash) == {"registration_number"}
    assert client.get(f"/experts/{entry['id']}").json()["registration_number"] == "012345"
