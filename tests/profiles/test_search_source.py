"""GET /admin/experts/published: the search index's source for ``tsunagu search reindex``: every listed
entry's public view (exactly its latest published event's data) and version, admins only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.profiles.conftest import Auth, create_listed, expert_body, outbox
from tsunagu.auth import Role
from tsunagu.events import Subjects


def test_published_lists_what_the_events_published_and_only_to_admins(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    first = create_listed(client, auth, expert_body(registration_number="410001", name="索引 一郎"), "u-1").json()
    create_listed(client, auth, expert_body(registration_number="410002", name="索引 二郎"), "u-2")
    # An expert's own entry waits for verification: not published, not listed.
    client.post("/experts", json=expert_body(registration_number="410003"), headers=auth(Role.EXPERT, "u-3"))
    client.patch(f"/experts/{first['id']}", json={"bio": "更新"}, headers=auth(Role.EXPERT, "u-1"))

    page = client.get("/admin/experts/published", headers=auth(Role.ADMIN), params={"limit": 1})
    assert page.status_code == 200
    assert page.json()["total"] == 2 and len(page.json()["items"]) == 1
    items = client.get("/admin/experts/published", headers=auth(Role.ADMIN)).json()["items"]
    assert [i["data"]["id"] for i in items] == sorted(i["data"]["id"] for i in items)

    # Each item is the latest published event of the entry: the same data and version.
    latest = {}
    for event in outbox(engine, Subjects.EXPERT_PUBLISHED):
        if event.subject_id not in latest or latest[event.subject_id].entity_version < event.entity_version:
            latest[event.subject_id] = event
    assert {i["data"]["id"] for i in items} == set(latest)
    for item in items:
        event = latest[item["data"]["id"]]
        assert item["version"] == event.entity_version
        assert item["data"] == event.model_dump(mode="json")["data"]
        assert "contact_email" not in item["data"] and "contact_phone" not in item["data"]

    assert client.get("/admin/experts/published").status_code == 401
    for role in (Role.EXPERT, Role.SME, Role.BROKER, Role.HUB):
        response = client.get("/admin/experts/published", headers=auth(role, prefectures=["13"]))
        assert response.status_code == 403
        assert "items" not in response.json()
