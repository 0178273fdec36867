"""SME organisations: who may create, read, change and list them; members; events; bad input."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tsunagu.auth import Role
from tsunagu.events import Subjects
from tests.profiles.conftest import Auth, field_names, outbox

BODY = {
    "name": "株式会社みなと精密工業",
    "prefecture": "神奈川県",
    "industry": "製造業",
    "employees": 45,
    "digitalization_stage": 2,
    "security_action": "one_star",
    "scs_target": "scs_3",
}


def test_an_sme_registers_its_organisation_and_becomes_a_member(client: TestClient, auth: Auth, engine: Engine) -> None:
    sme = auth(Role.SME, "sme-1")
    response = client.post("/organizations", json=BODY, headers=sme)
    assert response.status_code == 201, response.text
    organization = response.json()
    assert organization["prefecture"] == "14" and organization["prefecture_name"] == "神奈川県"
    assert organization["member_user_ids"] == ["sme-1"] and organization["version"] == 1
    event = outbox(engine, Subjects.ORGANIZATION_UPSERTED)[0]
    assert event.subject_id == organization["id"] and event.entity_version == 1
    assert event.data["member_user_ids"] == ["sme-1"] and event.data["security_action"] == "one_star"
    assert event.data["scs_target"] == "scs_3" and event.data["digitalization_stage"] == 2


def test_who_reads_and_lists(client: TestClient, auth: Auth) -> None:
    organization = client.post("/organizations", json=BODY, headers=auth(Role.SME, "sme-1")).json()
    client.post("/organizations", json=BODY | {"name": "株式会社さくら食品", "prefecture": "沖縄県"}, headers=auth(Role.SME, "sme-2"))
    url = f"/organizations/{organization['id']}"
    assert client.get(url, headers=auth(Role.SME, "sme-1")).status_code == 200
    assert client.get(url, headers=auth(Role.BROKER, "b", prefectures=["14"])).status_code == 200
    # Outsiders learn nothing, not even that it exists.
    assert client.get(url, headers=auth(Role.SME, "sme-2")).status_code == 404
    assert client.get(url, headers=auth(Role.BROKER, "b", prefectures=["47"])).status_code == 404
    assert client.get(url, headers=auth(Role.EXPERT)).status_code == 404
    assert client.get(url).status_code == 401

    mine = client.get("/organizations", headers=auth(Role.SME, "sme-1")).json()
    assert mine["total"] == 1 and mine["items"][0]["name"] == "株式会社みなと精密工業"
    kanagawa = client.get("/organizations", headers=auth(Role.BROKER, "b", prefectures=["14", "13"])).json()
    assert [item["prefecture"] for item in kanagawa["items"]] == ["14"]
    assert client.get("/organizations", headers=auth(Role.ADMIN)).json()["total"] == 2
    assert client.get("/organizations", headers=auth(Role.BROKER, "nowhere")).json()["total"] == 0
    assert client.get("/organizations", headers=auth(Role.EXPERT)).status_code == 403
    assert client.get("/organizations").status_code == 401


def test_members_change_it_and_add_members(client: TestClient, auth: Auth, engine: Engine) -> None:
    organization = client.post("/organizations", json=BODY, headers=auth(Role.SME, "sme-1")).json()
    url = f"/organizations/{organization['id']}"
    changed = client.patch(url, json={"security_action": "two_star", "digitalization_stage": 3}, headers=auth(Role.SME, "sme-1"))
    assert changed.status_code == 200 and changed.json()["security_action"] == "two_star" and changed.json()["version"] == 2
    assert client.patch(url, json={"employees": 1}, headers=auth(Role.BROKER, "b", prefectures=["14"])).status_code == 403
    assert client.patch(url, json={"employees": 1}, headers=auth(Role.SME, "sme-2")).status_code == 404

    added = client.post(f"{url}/members", json={"user_id": "sme-3"}, headers=auth(Role.SME, "sme-1"))
    assert added.status_code == 201 and added.json()["member_user_ids"] == ["sme-1", "sme-3"]
    assert client.get(url, headers=auth(Role.SME, "sme-3")).status_code == 200
    assert outbox(engine, Subjects.ORGANIZATION_UPSERTED)[-1].data["member_user_ids"] == ["sme-1", "sme-3"]
    assert client.post(f"{url}/members", json={"user_id": "sme-9"}, headers=auth(Role.SME, "sme-2")).status_code == 404
    removed = client.delete(f"{url}/members/sme-3", headers=auth(Role.SME, "sme-1"))
    assert removed.status_code == 200 and removed.json()["member_user_ids"] == ["sme-1"]
    assert client.delete(f"{url}/members/sme-3", headers=auth(Role.SME, "sme-1")).status_code == 404
    versions = [event.entity_version for event in outbox(engine, Subjects.ORGANIZATION_UPSERTED)]
    assert versions == [1, 2, 3, 4]


def test_brokers_register_only_in_their_prefectures(client: TestClient, auth: Auth) -> None:
    broker = auth(Role.BROKER, "b", prefectures=["14"])
    created = client.post("/organizations", json=BODY | {"member_user_ids": ["sme-7"]}, headers=broker)
    assert created.status_code == 201 and created.json()["member_user_ids"] == ["sme-7"]
    assert client.post("/organizations", json=BODY | {"prefecture": "13"}, headers=broker).status_code == 403
    assert client.post("/organizations", json=BODY, headers=auth(Role.EXPERT)).status_code == 403
    assert client.post("/organizations", json=BODY).status_code == 401


def test_bad_organisation_input(client: TestClient, auth: Auth, engine: Engine) -> None:
    sme = auth(Role.SME, "sme-1")
    for change, field in [
        ({"prefecture": "火星"}, "prefecture"),
        ({"digitalization_stage": 5}, "digitalization_stage"),
        ({"employees": -3}, "employees"),
        ({"security_action": "three_star"}, "security_action"),
        ({"scs_target": "scs_5"}, "scs_target"),
        ({"name": "社" * 201}, "name"),
        ({"name": ""}, "name"),
        ({"owner": "x"}, "owner"),
    ]:
        response = client.post("/organizations", json=BODY | change, headers=sme)
        assert response.status_code == 422 and field in field_names(response), (change, response.text)
        assert response.json()["error"]["message_ja"] and response.json()["error"]["message_en"]
    assert outbox(engine) == []
    organization = client.post("/organizations", json=BODY, headers=sme).json()
    response = client.patch(f"/organizations/{organization['id']}", json={"name": None}, headers=sme)
    assert response.status_code == 422 and "name" in field_names(response)
    assert client.post(f"/organizations/{organization['id']}/members", json={"user_id": ""}, headers=sme).status_code == 422
