"""The profiles API through the gateway, with every service running as a real process (nats-server,
profiles, matching, search, gateway): what issue 3 promises is reachable by the people who use it."""

from __future__ import annotations

import csv
import io
import random

import pytest

from services.profiles.importer import EXPORT_HEADER, body_cells
from tests.conftest import Api
from tests.e2e.helpers import unique_name, wait_searchable
from tests.profiles.conftest import expert_body

pytestmark = pytest.mark.e2e

_numbers = iter(random.Random().sample(range(800_000, 999_999), 100))
PHONE = "090-0000-9876"


def registration_number() -> str:
    return f"{next(_numbers):06d}"


def test_visibility_through_the_gateway_and_the_search_index(api: Api, admin: dict[str, str]) -> None:
    expert = api.register("expert")
    name = unique_name()
    body = expert_body(registration_number=registration_number(), name=name, contact_phone=PHONE, fee_min_yen=8000,
                       fee_max_yen=12000, prefectures=["沖縄県"])
    created = api.http.post("/api/v1/experts", headers=expert, json=body)
    assert created.status_code == 201, created.text
    expert_id = created.json()["id"]
    assert created.json()["contact_phone"] == PHONE

    anonymous = api.http.get(f"/api/v1/experts/{expert_id}").json()
    assert "contact_phone" not in anonymous and "fee_min_yen" not in anonymous and anonymous["name"] == name
    broker = api.account("broker", prefectures=["47"])
    brokers_view = api.http.get(f"/api/v1/experts/{expert_id}", headers=broker).json()
    assert brokers_view["fee_min_yen"] == 8000 and "contact_phone" not in brokers_view
    assert api.http.get(f"/api/v1/experts/{expert_id}", headers=admin).json()["contact_phone"] == PHONE
    listed = api.http.get("/api/v1/experts", params={"prefecture": "沖縄県", "name": name}, headers=broker).json()
    assert [item["id"] for item in listed["items"]] == [expert_id]

    hit = wait_searchable(api, name, expert_id)
    assert PHONE not in str(hit)

    confirmed = api.http.post(f"/api/v1/experts/{expert_id}/confirm-active", headers=expert)
    assert confirmed.status_code == 200 and confirmed.json()["active"] is True
    hidden = api.http.put(f"/api/v1/experts/{expert_id}/visibility", headers=expert, json={"visibility": {"skills": "private"}})
    assert hidden.status_code == 200 and "skills" not in api.http.get(f"/api/v1/experts/{expert_id}").json()


def test_organisations_through_the_gateway(api: Api) -> None:
    sme = api.register("sme")
    created = api.http.post("/api/v1/organizations", headers=sme, json={
        "name": "株式会社琉球物産", "prefecture": "沖縄県", "industry": "卸売業", "employees": 12,
        "digitalization_stage": 1, "security_action": "none", "scs_target": "scs_3"})
    assert created.status_code == 201, created.text
    organization_id = created.json()["id"]
    assert api.http.get("/api/v1/organizations", headers=sme).json()["total"] == 1
    broker = api.account("broker", prefectures=["47"])
    assert organization_id in [item["id"] for item in api.http.get("/api/v1/organizations", headers=broker).json()["items"]]
    elsewhere = api.account("broker", prefectures=["01"])
    assert api.http.get(f"/api/v1/organizations/{organization_id}", headers=elsewhere).status_code == 404
    bad = api.http.post("/api/v1/organizations", headers=sme, json={"name": "x", "prefecture": "火星"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "prefecture"


def test_import_export_and_freshness_through_the_gateway(api: Api, admin: dict[str, str]) -> None:
    numbers = [registration_number() for _ in range(3)]
    bodies = [expert_body(registration_number=number, name=unique_name()) for number in numbers]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    for body in bodies:
        writer.writerow(body_cells(body))
    writer.writerow(body_cells(expert_body(registration_number="12AB")))
    data = out.getvalue().encode("cp932")

    def upload() -> dict:
        response = api.http.post("/api/v1/admin/experts/import", headers=admin,
                                 files={"file": ("名簿.csv", data, "text/csv")})
        assert response.status_code == 200, response.text
        return response.json()

    report = upload()
    assert (report["encoding"], report["created"], report["rejected"]) == ("cp932", 3, 1)
    assert report["errors"][0]["line"] == 5 and report["errors"][0]["field"] == "registration_number"
    again = upload()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)

    broker = api.account("broker", prefectures=["13"])
    assert api.http.post("/api/v1/admin/experts/import", headers=broker, files={"file": ("x.csv", data, "text/csv")}).status_code == 403
    exported = api.http.get("/api/v1/admin/experts/export", headers=admin, params={"encoding": "cp932"})
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    text = exported.content.decode("cp932")
    assert all(number in text for number in numbers)

    summary = api.http.post("/api/v1/admin/experts/freshness/run", headers=admin)
    assert summary.status_code == 200 and summary.json()["checked"] >= 3
    assert api.http.post("/api/v1/admin/experts/freshness/run", headers=broker).status_code == 403
