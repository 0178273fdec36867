"""GET /admin/search-sources/requests and /projects: what the search indexes should hold, for ``tsunagu
search reindex``: the indexed fields and the latest event's version, no people, admins only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests import factories
from tests.matching.conftest import Auth, outbox
from tsunagu.auth import Role
from tsunagu.events import Subjects


def test_request_and_project_sources_carry_the_latest_versions_and_only_admins_read_them(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    sme = auth(Role.SME, "sme-1")
    submitted = client.post("/requests", json=factories.request_body(title="索引の相談"), headers=sme).json()
    client.post("/requests", json=factories.request_body(draft=True), headers=sme)  # a draft: never indexed
    client.patch(f"/requests/{submitted['id']}", json={"title": "索引の相談（改）"}, headers=sme)
    hub = auth(Role.HUB, "hub-1", prefectures=["13"])
    created = client.post("/projects", json=factories.project_body(prefecture="13"), headers=hub)
    assert created.status_code == 201, created.text

    requests = client.get("/admin/search-sources/requests", headers=auth(Role.ADMIN))
    assert requests.status_code == 200
    assert requests.json()["total"] == 1
    (item,) = requests.json()["items"]
    latest = max((e for e in outbox(engine) if e.subject_id == submitted["id"]), key=lambda e: e.entity_version)
    assert item["request_id"] == submitted["id"] and item["version"] == latest.entity_version
    assert item["title"] == "索引の相談（改）" and item["status"] == "submitted"
    assert not {"sme_user_ids", "actor_id", "organization_id", "created_by"} & set(item)

    projects = client.get("/admin/search-sources/projects", headers=auth(Role.ADMIN)).json()
    (source,) = projects["items"]
    event = [e for e in outbox(engine) if e.type.startswith(Subjects.PROJECT_PREFIX + ".")][-1]
    assert source["data"]["project_id"] == created.json()["id"] and source["version"] == event.entity_version
    assert source["data"]["member_user_ids"] == [] and source["data"]["actor_id"] is None

    for path in ("/admin/search-sources/requests", "/admin/search-sources/projects"):
        assert client.get(path).status_code == 401
        for role in (Role.SME, Role.EXPERT, Role.BROKER, Role.HUB):
            response = client.get(path, headers=auth(role, prefectures=["13"]))
            assert response.status_code == 403 and "items" not in response.json()
