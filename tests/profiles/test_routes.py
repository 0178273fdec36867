"""The HTTP routes: /experts (creating, reading, changing and listing entries; bad input; nothing
half-written) and /organizations (who may create, read, change and list them; members; events)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.factories import dx_body, organization_body
from tests.profiles.conftest import Auth, create_listed, expert_body, field_names, outbox
from tsunagu.auth import Role
from tsunagu.events import Subjects


def test_an_expert_creates_its_entry_and_both_events_are_written(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    response = create_listed(client, auth, expert_body(prefectures=["東京都", "神奈川県"]), "u1")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["prefectures"] == ["13", "14"]
    assert created["skills"] == ["aws"]
    assert created["renewal_deadline"] == "2027-03-31"
    assert created["active"] is True and created["version"] == 1
    assert created["owner_user_id"] == "u1" and created["visibility"]["contact_email"] == "private"
    assert client.get("/experts/me", headers=auth(Role.EXPERT, "u1")).json()["id"] == created["id"]

    events = outbox(engine)
    assert [event.type for event in events] == [Subjects.EXPERT_UPSERTED, Subjects.EXPERT_PUBLISHED]
    features, published = events
    assert {event.source for event in events} == {"profiles"}
    assert {event.subject_id for event in events} == {created["id"]}
    assert {event.entity_version for event in events} == {1}
    assert features.data["topics"] == {"ransomware": 3} and features.data["capacity"] == 3
    assert features.data["registration_expires_on"] == "2027-03-31"
    assert published.data["topic_labels"] == ["ランサムウェア対策"]
    assert published.data["registration_number"] == "012345"


def test_request_id_becomes_the_correlation_id(client: TestClient, auth: Auth, engine: Engine) -> None:
    create_listed(client, auth, expert_body(), "u-req", **{"X-Request-ID": "req-42"})
    assert {event.correlation_id for event in outbox(engine)} == {"req-42"}


def test_dx_talent(client: TestClient, auth: Auth, engine: Engine) -> None:
    response = create_listed(client, auth, dx_body(), "dx")
    assert response.status_code == 201, response.text
    talent = response.json()
    assert talent["kind"] == "dx_talent" and "registration_number" not in talent
    assert talent["programme"]["case_study_completed"] is True
    assert outbox(engine, Subjects.EXPERT_UPSERTED)[0].data["dss_roles"] == {"data_scientist": 2}


def test_who_may_create(client: TestClient, auth: Auth) -> None:
    assert client.post("/experts", json=expert_body()).status_code == 401
    assert client.post("/experts", json=expert_body(), headers=auth(Role.SME)).status_code == 403
    assert client.post("/experts", json=expert_body(), headers=auth(Role.BROKER)).status_code == 403
    foreign = client.post("/experts", json=expert_body(owner_user_id="someone-else"), headers=auth(Role.EXPERT, "me"))
    assert foreign.status_code == 403
    by_admin = client.post("/experts", json=expert_body(owner_user_id="expert-9"), headers=auth(Role.ADMIN))
    assert by_admin.status_code == 201 and by_admin.json()["owner_user_id"] == "expert-9"
    assert client.get("/experts/me", headers=auth(Role.EXPERT, "expert-9")).status_code == 200
    forged = {"Authorization": "Bearer not-a-token"}
    assert client.post("/experts", json=expert_body(), headers=forged).status_code == 401


def test_duplicates_are_refused_with_the_field(client: TestClient, auth: Auth, engine: Engine) -> None:
    assert client.post("/experts", json=expert_body(), headers=auth(Role.EXPERT, "a")).status_code == 201
    written = len(outbox(engine))
    same_number = client.post(
        "/experts", json=expert_body(registration_number="０１２３４５"), headers=auth(Role.EXPERT, "b")
    )
    assert same_number.status_code == 409 and field_names(same_number) == {"registration_number"}
    error = same_number.json()["error"]
    assert "012345" in error["message_ja"] and "already listed" in error["message_en"]
    second_profile = client.post(
        "/experts", json=expert_body(registration_number="999999"), headers=auth(Role.EXPERT, "a")
    )
    assert second_profile.status_code == 409 and field_names(second_profile) == {"owner_user_id"}
    assert len(outbox(engine)) == written
    assert client.get("/experts/me", headers=auth(Role.EXPERT, "b")).status_code == 404


BAD_BODIES = [
    ({"registration_number": "12AB"}, "registration_number"),
    ({"prefectures": ["火星県"]}, "prefectures.0"),
    ({"strengths": [{"topic": "no_such_topic", "depth": 2}]}, "strengths.0.topic"),
    ({"strengths": [{"topic": "ransomware", "depth": 9}]}, "strengths.0.depth"),
    ({"registration_date": "2024-04-01", "renewal_deadline": "2023-04-01"}, "renewal_deadline"),
    ({"training": {"online": ["2020-01-01"]}}, "training"),
    ({"fee_min_yen": 30000, "fee_max_yen": 5000}, "fee_max_yen"),
    ({"registration_date": "2024/99/01"}, "registration_date"),
    ({"bio": "長" * 2001}, "bio"),
    ({"name": "あ" * 500}, "name"),
    ({"name": None}, "name"),
    ({"capacity": "three"}, "capacity"),
    ({"contact_email": "yamada at example"}, "contact_email"),
    ({"visibility": {"name": "private"}}, "visibility"),
    ({"unexpected": 1}, "unexpected"),
]


@pytest.mark.parametrize(("change", "field"), BAD_BODIES)
def test_bad_input_names_the_field_in_both_languages_and_writes_nothing(
    client: TestClient, auth: Auth, engine: Engine, change: dict, field: str
) -> None:
    body = {key: value for key, value in (expert_body() | change).items() if value is not None}
    response = client.post("/experts", json=body, headers=auth(Role.EXPERT, "bad"))
    assert response.status_code == 422, response.text
    assert field in field_names(response), response.text
    error = response.json()["error"]
    assert error["message_ja"] and error["message_en"]
    assert all(item["message_ja"] and item["message_en"] for item in error["fields"])
    assert client.get("/experts/me", headers=auth(Role.EXPERT, "bad")).status_code == 404
    assert outbox(engine) == []


def test_not_json_and_too_large(client: TestClient, auth: Auth, engine: Engine) -> None:
    headers = auth(Role.EXPERT) | {"content-type": "application/json"}
    assert client.post("/experts", content=b"{broken", headers=headers).status_code == 422
    huge = client.post("/experts", json=expert_body(bio="x" * 2_000_000), headers=auth(Role.EXPERT))
    assert huge.status_code == 413 and huge.json()["error"]["message_ja"] == "送信データが大きすぎます"
    assert outbox(engine) == []


def test_patch_by_the_owner_merges_and_validates_the_whole(client: TestClient, auth: Auth, engine: Engine) -> None:
    owner = auth(Role.EXPERT, "owner")
    created = create_listed(client, auth, expert_body(), "owner").json()
    url = f"/experts/{created['id']}"
    changed = client.patch(
        url,
        json={"skills": ["ＡＷＳ", "Azure"], "services": ["マネジメント指導"], "bio": "よろしくお願いします"},
        headers=owner,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["skills"] == ["aws", "azure"] and changed.json()["version"] == 2
    assert changed.json()["services"] == ["management_guidance"] and changed.json()["name"] == "山田 太郎"
    assert [event.entity_version for event in outbox(engine, Subjects.EXPERT_UPSERTED)] == [1, 2]

    # The same values again: no new version, no event.
    written = len(outbox(engine))
    same = client.patch(url, json={"skills": ["aws", "azure"]}, headers=owner)
    assert same.json()["version"] == 2 and len(outbox(engine)) == written

    for patch, field in [
        ({"renewal_deadline": "2020-01-01"}, "renewal_deadline"),
        ({"prefectures": ["火星"]}, "prefectures.0"),
        ({"kind": "dx_talent"}, "kind"),
        ({"name": None}, "name"),
        ({"nonsense": True}, "nonsense"),
        ({"registration_number": "765432"}, "registration_number"),
    ]:
        refused = client.patch(url, json=patch, headers=owner)
        assert refused.status_code == 422 and field in field_names(refused), (patch, refused.text)
    assert client.patch(url, json=["not", "an", "object"], headers=owner).status_code == 422
    assert client.get(url, headers=owner).json()["version"] == 2 and len(outbox(engine)) == written

    assert client.patch(url, json={"bio": "乗っ取り"}, headers=auth(Role.EXPERT, "intruder")).status_code == 403
    assert client.patch(url, json={"bio": "乗っ取り"}, headers=auth(Role.BROKER)).status_code == 403
    assert client.patch(url, json={"bio": "x"}).status_code == 401
    assert client.patch(url, json={"owner_user_id": "intruder"}, headers=owner).status_code == 403
    assert client.patch("/experts/no-such-id", json={"bio": "x"}, headers=owner).status_code == 404

    # An admin corrects the registration number and assigns the owner.
    fixed = client.patch(
        url, json={"registration_number": "765432", "owner_user_id": "owner-2"}, headers=auth(Role.ADMIN)
    )
    assert fixed.status_code == 200 and fixed.json()["registration_number"] == "765432"
    assert client.get("/experts/me", headers=auth(Role.EXPERT, "owner-2")).status_code == 200


def test_patch_cannot_take_another_entrys_registration_number(client: TestClient, auth: Auth) -> None:
    client.post("/experts", json=expert_body(registration_number="111111"), headers=auth(Role.EXPERT, "one"))
    other = client.post(
        "/experts", json=expert_body(registration_number="222222"), headers=auth(Role.EXPERT, "two")
    ).json()
    clash = client.patch(f"/experts/{other['id']}", json={"registration_number": "111111"}, headers=auth(Role.ADMIN))
    assert clash.status_code == 409 and field_names(clash) == {"registration_number"}


def test_a_registration_number_sent_as_a_number_or_a_boolean_is_a_422_not_a_500(client: TestClient, auth: Auth) -> None:
    """Found by fuzzing the gateway's merged OpenAPI: a non-text value met a text-only length limit."""
    created = client.post(
        "/experts", json=expert_body(registration_number="333333"), headers=auth(Role.EXPERT, "three")
    )
    for value in (False, 0):
        response = client.patch(
            f"/experts/{created.json()['id']}", json={"registration_number": value}, headers=auth(Role.ADMIN)
        )
        assert response.status_code == 422 and field_names(response) == {"registration_number"}
    assert client.patch(
        "/experts/nobody", json={"registration_number": False}, headers=auth(Role.ADMIN)
    ).status_code in (
        404,
        422,
    )


def test_list_for_brokers_and_admins_with_filters_and_pages(client: TestClient, auth: Auth) -> None:
    admin = auth(Role.ADMIN)
    for index in range(5):
        client.post(
            "/experts",
            json=expert_body(
                registration_number=f"10000{index}",
                name=f"専門家 {index}",
                prefectures=["13"] if index % 2 == 0 else ["27"],
                skills=["AWS"] if index < 2 else ["Azure"],
                strengths=[{"topic": "ransomware" if index < 3 else "incident_response", "depth": 2}],
                services=["management_guidance"] if index == 4 else [],
            ),
            headers=admin,
        )
    client.post("/experts", json=dx_body(), headers=admin)
    broker = auth(Role.BROKER, "broker-1", prefectures=["13"])
    everything = client.get("/experts", headers=broker).json()
    assert everything["total"] == 6 and len(everything["items"]) == 6
    assert client.get("/experts", params={"prefecture": "東京都"}, headers=broker).json()["total"] == 3
    assert client.get("/experts", params={"skill": "ＡＷＳ"}, headers=broker).json()["total"] == 2
    assert client.get("/experts", params={"topic": "incident_response"}, headers=broker).json()["total"] == 2
    assert client.get("/experts", params={"service": "management_guidance"}, headers=broker).json()["total"] == 1
    assert client.get("/experts", params={"kind": "dx_talent"}, headers=broker).json()["total"] == 1
    assert client.get("/experts", params={"name": "専門家 3"}, headers=broker).json()["total"] == 1
    assert client.get("/experts", params={"active": "false"}, headers=admin).json()["total"] == 0
    page = client.get("/experts", params={"limit": 2, "offset": 4}, headers=admin).json()
    assert page["total"] == 6 and len(page["items"]) == 2 and page["offset"] == 4
    assert client.get("/experts", params={"stale_days": 1}, headers=admin).json()["total"] == 0

    assert client.get("/experts").status_code == 401
    assert client.get("/experts", headers=auth(Role.SME)).status_code == 403
    assert client.get("/experts", headers=auth(Role.EXPERT)).status_code == 403
    for params, field in [
        ({"prefecture": "火星"}, "prefecture"),
        ({"topic": "x"}, "topic"),
        ({"limit": 1000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"kind": "robot"}, "kind"),
    ]:
        response = client.get("/experts", params=params, headers=broker)
        assert response.status_code == 422 and field in field_names(response), response.text


def test_unknown_entry_is_404_in_both_languages(client: TestClient) -> None:
    response = client.get("/experts/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"]["message_ja"] == "専門家が見つかりません"
    assert response.json()["error"]["message_en"] == "Expert not found"


# --- /organizations ----------------------------------------------------------------------------

BODY = organization_body(
    name="株式会社みなと精密工業",
    prefecture="神奈川県",
    industry="製造業",
    employees=45,
    digitalization_stage=2,
    security_action="one_star",
    scs_target="scs_3",
)


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
    client.post(
        "/organizations",
        json=BODY | {"name": "株式会社さくら食品", "prefecture": "沖縄県"},
        headers=auth(Role.SME, "sme-2"),
    )
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
    changed = client.patch(
        url, json={"security_action": "two_star", "digitalization_stage": 3}, headers=auth(Role.SME, "sme-1")
    )
    assert (
        changed.status_code == 200
        and changed.json()["security_action"] == "two_star"
        and changed.json()["version"] == 2
    )
    assert (
        client.patch(url, json={"employees": 1}, headers=auth(Role.BROKER, "b", prefectures=["14"])).status_code == 403
    )
    assert client.patch(url, json={"employees": 1}, headers=auth(Role.SME, "sme-2")).status_code == 404

    # Adding a member is an invitation the user accepts (tests/profiles/test_invitations.py has the rest).
    invited = client.post(f"{url}/members", json={"user_id": "sme-3"}, headers=auth(Role.SME, "sme-1"))
    assert invited.status_code == 201 and invited.json()["status"] == "pending"
    assert client.get(url, headers=auth(Role.SME, "sme-3")).status_code == 404
    accepted = client.post(f"/organizations/invitations/{invited.json()['id']}/accept", headers=auth(Role.SME, "sme-3"))
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    added = client.get(url, headers=auth(Role.SME, "sme-1"))
    assert added.json()["member_user_ids"] == ["sme-1", "sme-3"]
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
    # The SME named is invited, not added: it joins by accepting.
    assert created.status_code == 201 and created.json()["member_user_ids"] == []
    invitation = client.get("/organizations/invitations", headers=auth(Role.SME, "sme-7")).json()["items"][0]
    client.post(f"/organizations/invitations/{invitation['id']}/accept", headers=auth(Role.SME, "sme-7"))
    assert client.get(f"/organizations/{created.json()['id']}", headers=broker).json()["member_user_ids"] == ["sme-7"]
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
    assert (
        client.post(f"/organizations/{organization['id']}/members", json={"user_id": ""}, headers=sme).status_code
        == 422
    )
