"""The requests API over HTTP: status codes, the JSON a client sees, who reads what (404 for everyone
else, so ids cannot be probed), and bad input refused with the field's name."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.factories import request_body
from tests.matching.conftest import Auth, field_names, outbox
from tsunagu.auth import Role
from tsunagu.events import Subjects


def test_an_sme_submits_a_request_and_its_event_waits_in_the_outbox(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    response = client.post("/requests", json=request_body(skills=["Cloud  Security"]), headers=auth(Role.SME, "sme-1"))
    assert response.status_code == 201, response.text
    request = response.json()
    assert request["prefecture"] == "47" and request["prefecture_name"] == "沖縄県"
    assert request["created_by"] == "sme-1" and request["status"] == "submitted"
    assert request["topics"] == ["ransomware", "backup_bcp"] and request["skills"] == ["cloud security"]
    assert "entity_version" not in request
    [event] = outbox(engine, Subjects.REQUEST_SUBMITTED)
    assert event.subject_id == request["id"] and event.entity_version == 1
    assert event.data["skills"] == ["cloud security"] and event.data["prefecture"] == "47"


def test_only_smes_submit(client: TestClient, auth: Auth, engine: Engine) -> None:
    assert client.post("/requests", json=request_body()).status_code == 401
    for role in (Role.EXPERT, Role.BROKER, Role.HUB):
        assert client.post("/requests", json=request_body(), headers=auth(role, prefectures=["47"])).status_code == 403
    assert outbox(engine) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"prefecture": "火星県"}, "prefecture"),
        ({"topics": ["no_such_topic"]}, "topics"),
        ({"topics": "ransomware"}, "topics"),
        ({"skills": [""]}, "skills"),
        ({"skills": ["x" * 51]}, "skills"),
        ({"self_diagnosis": {"26": "no"}}, "self_diagnosis"),
        ({"delivery": "teleport"}, "delivery"),
        ({"unexpected": 1}, "unexpected"),
        ({"topics": [], "self_diagnosis": {}}, "topics"),
        ({"organization_id": "no-such-organisation"}, "organization_id"),
    ],
)
def test_bad_bodies_are_refused_with_the_field_and_nothing_written(
    client: TestClient, auth: Auth, engine: Engine, change: dict, field: str
) -> None:
    response = client.post("/requests", json=request_body(**change), headers=auth(Role.SME))
    assert response.status_code == 422, response.text
    assert field_names(response) == {field}
    assert all(f["message_ja"] and f["message_en"] for f in response.json()["error"]["fields"])
    assert outbox(engine) == []


def test_who_reads_a_request_and_its_ranking(client: TestClient, auth: Auth) -> None:
    """The HTTP side of the rules in service.can_read_request (tested in full in test_service)."""
    request = client.post("/requests", json=request_body(prefecture="47"), headers=auth(Role.SME, "sme-1")).json()
    path = f"/requests/{request['id']}"

    # The owner, and hub staff of the prefecture (regional staff read there, like brokers).
    for headers in (auth(Role.SME, "sme-1"), auth(Role.HUB, prefectures=["46", "47"])):
        assert client.get(path, headers=headers).json()["id"] == request["id"]
        assert client.get(path + "/ranking", headers=headers).json()["status"] == "pending"

    for headers in (auth(Role.SME, "sme-2"), auth(Role.HUB, prefectures=["13"]), auth(Role.EXPERT)):
        assert client.get(path, headers=headers).status_code == 404
        assert client.get(path + "/ranking", headers=headers).status_code == 404
    assert client.get("/requests/no-such-request", headers=auth(Role.ADMIN)).status_code == 404
    assert client.get(path).status_code == 401


def test_who_lists_what(client: TestClient, auth: Auth) -> None:
    okinawa = client.post("/requests", json=request_body(prefecture="47"), headers=auth(Role.SME, "sme-1")).json()
    tokyo = client.post("/requests", json=request_body(prefecture="13"), headers=auth(Role.SME, "sme-2")).json()

    def ids(headers: dict[str, str], **params) -> list[str]:
        response = client.get("/requests", headers=headers, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids(auth(Role.SME, "sme-1")) == [okinawa["id"]]
    assert ids(auth(Role.BROKER, prefectures=["13"])) == [tokyo["id"]]
    assert ids(auth(Role.HUB, prefectures=["47"])) == [okinawa["id"]]
    assert ids(auth(Role.ADMIN)) == [tokyo["id"], okinawa["id"]]  # newest first
    assert ids(auth(Role.ADMIN), status="ranked") == []
    assert client.get("/requests", headers=auth(Role.EXPERT)).status_code == 403
    assert client.get("/requests").status_code == 401


def test_lists_are_pages(client: TestClient, auth: Auth) -> None:
    sme = auth(Role.SME, "sme-1")
    for _ in range(3):
        client.post("/requests", json=request_body(), headers=sme)
    page = client.get("/requests", headers=sme, params={"limit": 2, "offset": 1}).json()
    assert set(page) == {"items", "total", "limit", "offset"}
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 1 and len(page["items"]) == 2
    assert page["items"][0]["prefecture_name"] == "沖縄県"
    for params, field in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"offset": -1}, "offset")):
        response = client.get("/requests", headers=sme, params=params)
        assert response.status_code == 422 and field_names(response) == {field}


def test_a_ranking_is_pending_until_the_scorer_has_run(client: TestClient, auth: Auth) -> None:
    sme = auth(Role.SME, "sme-1")
    request = client.post("/requests", json=request_body(), headers=sme).json()
    ranking = client.get(f"/requests/{request['id']}/ranking", headers=sme).json()
    assert ranking["request_id"] == request["id"] and ranking["status"] == "pending"
    assert ranking["entries"] == [] and ranking["message_ja"] and ranking["message_en"]


def test_the_openapi_says_what_each_route_returns(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in (
        ("/requests", "post"),
        ("/requests", "get"),
        ("/requests/{request_id}", "get"),
        ("/requests/{request_id}/ranking", "get"),
    ):
        success = next(iter(code for code in paths[path][method]["responses"] if code.startswith("2")))
        assert "$ref" in paths[path][method]["responses"][success]["content"]["application/json"]["schema"]
