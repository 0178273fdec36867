"""Field visibility on every read path: API responses by role, the list filters, the events, the export."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.profiles.conftest import Auth, create_listed, expert_body, outbox
from tsunagu.auth import Role
from tsunagu.events import Subjects

PHONE = "090-0000-1234"
EMAIL = "yamada.private@example.jp"


@pytest.fixture
def entry(client: TestClient, auth: Auth) -> dict:
    body = expert_body(
        contact_phone=PHONE,
        contact_email=EMAIL,
        affiliation="株式会社テストセキュリティ",
        fee_min_yen=10000,
        fee_max_yen=20000,
        fee_unit="hour",
        bio="ランサムウェア対策が得意です。",
        visibility={"affiliation": "brokers", "bio": "private"},
    )
    response = create_listed(client, auth, body, "owner")
    assert response.status_code == 201, response.text
    return response.json()


def _serialised(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def test_private_phone_and_email_are_seen_only_by_the_expert_and_admins(
    client: TestClient, auth: Auth, entry: dict
) -> None:
    url = f"/experts/{entry['id']}"
    outsiders = {
        "anonymous": {},
        "sme": auth(Role.SME, "sme-1"),
        "broker": auth(Role.BROKER, "broker-1", prefectures=["13"]),
        "hub": auth(Role.HUB, "hub-1"),
        "another expert": auth(Role.EXPERT, "someone-else"),
    }
    for who, headers in outsiders.items():
        view = client.get(url, headers=headers).json()
        text = _serialised(view)
        assert PHONE not in text and EMAIL not in text, who
        assert "contact_phone" not in view and "contact_email" not in view and "visibility" not in view, who
        # The mandatory registration data is always there.
        assert view["registration_number"] == "012345" and view["name"] == "山田 太郎", who
        assert view["registration_date"] == "2024-04-01" and "training" in view, who
    for who, headers in {
        "owner": auth(Role.EXPERT, "owner"),
        "admin": auth(Role.ADMIN),
        "service": auth(Role.SERVICE),
    }.items():
        view = client.get(url, headers=headers).json()
        assert view["contact_phone"] == PHONE and view["contact_email"] == EMAIL, who
        assert view["bio"] and view["visibility"]["bio"] == "private", who
    assert client.get("/experts/me", headers=auth(Role.EXPERT, "owner")).json()["contact_phone"] == PHONE


def test_brokers_see_brokers_only_fields_and_the_public_does_not(client: TestClient, auth: Auth, entry: dict) -> None:
    url = f"/experts/{entry['id']}"
    public = client.get(url).json()
    broker = client.get(url, headers=auth(Role.BROKER, "broker-1")).json()
    for hidden in ("affiliation", "fee_min_yen", "fee_max_yen", "capacity", "bio", "status"):
        assert hidden not in public, hidden
    assert public["skills"] == ["aws"] and public["prefectures"] == ["13"] and public["active"] is True
    assert (
        broker["affiliation"] == "株式会社テストセキュリティ"
        and broker["fee_min_yen"] == 10000
        and broker["capacity"] == 3
    )
    assert "bio" not in broker and "status" in broker
    listed = client.get("/experts", headers=auth(Role.BROKER, "broker-1")).json()["items"][0]
    assert "bio" not in listed and "contact_email" not in listed and listed["affiliation"]


def test_the_published_event_carries_public_fields_only(entry: dict, engine: Engine) -> None:
    published = outbox(engine, Subjects.EXPERT_PUBLISHED)[0]
    text = _serialised(published.model_dump())
    assert PHONE not in text and EMAIL not in text
    assert "株式会社テストセキュリティ" not in text and "ランサムウェア対策が得意です" not in text
    assert published.data["affiliation"] is None and published.data["bio"] is None
    assert published.data["registration_number"] == "012345" and published.data["skills"] == ["aws"]
    # Matching features never carry contact data either.
    features = outbox(engine, Subjects.EXPERT_UPSERTED)[0]
    assert PHONE not in _serialised(features.model_dump()) and EMAIL not in _serialised(features.model_dump())
    assert features.data["fee_min_yen"] == 10000  # a matching feature, even though not public


def test_making_a_field_public_or_private_changes_every_view(
    client: TestClient, auth: Auth, entry: dict, engine: Engine
) -> None:
    owner = auth(Role.EXPERT, "owner")
    url = f"/experts/{entry['id']}"
    response = client.put(
        f"{url}/visibility", json={"visibility": {"contact_email": "public", "skills": "private"}}, headers=owner
    )
    assert response.status_code == 200, response.text
    # PUT replaces the settings: affiliation and bio return to their defaults (public).
    assert response.json()["visibility"]["affiliation"] == "public" and response.json()["visibility"]["bio"] == "public"
    public = client.get(url).json()
    assert public["contact_email"] == EMAIL and "contact_phone" not in public and "skills" not in public
    published = outbox(engine, Subjects.EXPERT_PUBLISHED)[-1]
    assert published.entity_version == 2 and published.data["skills"] is None
    assert PHONE not in _serialised(published.model_dump())

    # PATCH merges into the settings instead.
    patched = client.patch(url, json={"visibility": {"contact_email": "private"}}, headers=owner).json()
    assert patched["visibility"]["skills"] == "private" and patched["visibility"]["contact_email"] == "private"
    assert "contact_email" not in client.get(url).json()

    refused = client.put(f"{url}/visibility", json={"visibility": {"registration_number": "private"}}, headers=owner)
    assert refused.status_code == 422 and refused.json()["error"]["fields"][0]["message_en"]
    assert client.put(f"{url}/visibility", json={"visibility": {"bio": "secret"}}, headers=owner).status_code == 422
    assert client.put(f"{url}/visibility", json={"visibility": {}}, headers=auth(Role.EXPERT, "x")).status_code == 403


def test_a_filter_cannot_reveal_a_private_field(client: TestClient, auth: Auth, entry: dict) -> None:
    owner = auth(Role.EXPERT, "owner")
    broker = auth(Role.BROKER, "broker-1")
    assert client.get("/experts", params={"skill": "aws"}, headers=broker).json()["total"] == 1
    client.patch(
        f"/experts/{entry['id']}", json={"visibility": {"skills": "private", "prefectures": "private"}}, headers=owner
    )
    assert client.get("/experts", params={"skill": "aws"}, headers=broker).json()["total"] == 0
    assert client.get("/experts", params={"prefecture": "13"}, headers=broker).json()["total"] == 0
    assert client.get("/experts", params={"skill": "aws"}, headers=auth(Role.ADMIN)).json()["total"] == 1
    assert client.get("/experts", headers=broker).json()["total"] == 1  # still listed, without the private fields


def test_only_admins_export_and_the_export_has_everything(client: TestClient, auth: Auth, entry: dict) -> None:
    for role in (Role.BROKER, Role.EXPERT, Role.SME):
        assert client.get("/admin/experts/export", headers=auth(role)).status_code == 403
    assert client.get("/admin/experts/export").status_code == 401
    response = client.get("/admin/experts/export", headers=auth(Role.ADMIN))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    assert EMAIL in text
    assert PHONE in text
