"""The profiles API through the gateway, with every service running as a real process (nats-server,
profiles, matching, search, gateway): what issue 3 promises is reachable by the people who use it."""

from __future__ import annotations

import csv
import io
import random

import pytest

from launcher.runner import System
from services.profiles.csv_format import EXPORT_HEADER, body_cells
from tests.conftest import Api, wait_until
from tests.e2e.helpers import wait_searchable
from tests.factories import unique_name
from tests.profiles.conftest import expert_body
from tsunagu.mailsink import read_mails

pytestmark = pytest.mark.e2e

_numbers = iter(random.Random().sample(range(800_000, 999_999), 100))
PHONE = "090-0000-9876"


def registration_number() -> str:
    return f"{next(_numbers):06d}"


def test_visibility_through_the_gateway_and_the_search_index(api: Api, admin: dict[str, str]) -> None:
    expert = api.register("expert")
    name = unique_name()
    body = expert_body(
        registration_number=registration_number(),
        name=name,
        contact_phone=PHONE,
        fee_min_yen=8000,
        fee_max_yen=12000,
        prefectures=["沖縄県"],
    )
    created = api.http.post("/api/v1/experts", headers=expert, json=body)
    assert created.status_code == 201, created.text
    expert_id = created.json()["id"]
    assert created.json()["contact_phone"] == PHONE
    # The expert's own entry is listed once an admin has checked it against the register (issue 9).
    assert api.http.post(f"/api/v1/admin/experts/{expert_id}/verify", headers=admin).status_code == 200

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
    hidden = api.http.put(
        f"/api/v1/experts/{expert_id}/visibility", headers=expert, json={"visibility": {"skills": "private"}}
    )
    assert hidden.status_code == 200 and "skills" not in api.http.get(f"/api/v1/experts/{expert_id}").json()


def test_organisations_through_the_gateway(api: Api) -> None:
    sme = api.register("sme")
    created = api.http.post(
        "/api/v1/organizations",
        headers=sme,
        json={
            "name": "株式会社琉球物産",
            "prefecture": "沖縄県",
            "industry": "卸売業",
            "employees": 12,
            "digitalization_stage": 1,
            "security_action": "none",
            "scs_target": "scs_3",
        },
    )
    assert created.status_code == 201, created.text
    organization_id = created.json()["id"]
    assert api.http.get("/api/v1/organizations", headers=sme).json()["total"] == 1
    broker = api.account("broker", prefectures=["47"])
    assert organization_id in [
        item["id"] for item in api.http.get("/api/v1/organizations", headers=broker).json()["items"]
    ]
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
        response = api.http.post(
            "/api/v1/admin/experts/import", headers=admin, files={"file": ("名簿.csv", data, "text/csv")}
        )
        assert response.status_code == 200, response.text
        return response.json()

    report = upload()
    assert (report["encoding"], report["created"], report["rejected"]) == ("cp932", 3, 1)
    assert report["errors"][0]["line"] == 5 and report["errors"][0]["field"] == "registration_number"
    again = upload()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)

    broker = api.account("broker", prefectures=["13"])
    assert (
        api.http.post(
            "/api/v1/admin/experts/import", headers=broker, files={"file": ("x.csv", data, "text/csv")}
        ).status_code
        == 403
    )
    exported = api.http.get("/api/v1/admin/experts/export", headers=admin, params={"encoding": "cp932"})
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    text = exported.content.decode("cp932")
    assert all(number in text for number in numbers)

    summary = api.http.post("/api/v1/admin/experts/freshness/run", headers=admin)
    assert summary.status_code == 200 and summary.json()["checked"] >= 3
    assert api.http.post("/api/v1/admin/experts/freshness/run", headers=broker).status_code == 403


def _notification(api: Api, headers: dict[str, str], kind: str) -> dict | None:
    items = api.http.get("/api/v1/notifications", headers=headers, params={"limit": 100}).json()["items"]
    return next((item for item in items if item["kind"] == kind), None)


def test_a_claimed_profile_is_listed_only_once_verified_and_the_expert_is_told(
    api: Api, admin: dict[str, str], system: System
) -> None:
    """Issue 9 through the gateway: a new account's profile with a registration number is not public, not
    searchable, not ranked until an admin verifies it; a rejection tells the expert why, in the app and by mail;
    a second account claiming the number gets a 409 and the admin a contested claim."""
    expert = api.register("expert")
    name = unique_name()
    number = registration_number()
    created = api.http.post(
        "/api/v1/experts", headers=expert, json=expert_body(registration_number=number, name=name)
    ).json()
    assert created["verification"] == "pending"
    assert api.http.get(f"/api/v1/experts/{created['id']}").status_code == 404
    impostor = api.register("expert")
    claim = api.http.post("/api/v1/experts", headers=impostor, json=expert_body(registration_number=number))
    assert claim.status_code == 409 and claim.json()["error"]["code"] == "registration_number_claimed"
    claims = api.http.get("/api/v1/admin/experts/claims", headers=admin, params={"limit": 100}).json()["items"]
    assert any(item["expert_id"] == created["id"] for item in claims)
    pending = api.http.get("/api/v1/admin/experts/pending", headers=admin, params={"limit": 100}).json()["items"]
    assert created["id"] in [item["id"] for item in pending]

    verified = api.http.post(f"/api/v1/admin/experts/{created['id']}/verify", headers=admin)
    assert verified.status_code == 200
    wait_searchable(api, name, created["id"])
    told = wait_until(lambda: _notification(api, expert, "profiles.expert.verified"), timeout=30, message="told")
    assert "登録内容が確認されました" in told["title_ja"]

    # A rejected claim: the impostor is told why, in the app and by mail.
    claim_id = next(item["id"] for item in claims if item["expert_id"] == created["id"])
    reason = "登録簿の氏名と一致しません"
    rejected = api.http.post(f"/api/v1/admin/experts/claims/{claim_id}/reject", headers=admin, json={"reason": reason})
    assert rejected.status_code == 200
    notice = wait_until(
        lambda: _notification(api, impostor, "profiles.expert.rejected"), timeout=30, message="the impostor told"
    )
    assert reason in notice["body_ja"]
    email = api.http.get("/api/v1/auth/me", headers=impostor).json()["email"]
    wait_until(lambda: any(mail["To"] == email for mail in read_mails(system.maildir)), timeout=30, message="the mail")


def test_an_invitation_through_the_gateway(api: Api) -> None:
    owner, invitee = api.register("sme"), api.register("sme")
    organization = api.http.post(
        "/api/v1/organizations", headers=owner, json={"name": unique_name(), "prefecture": "13"}
    ).json()
    invitee_id = api.http.get("/api/v1/auth/me", headers=invitee).json()["id"]
    invited = api.http.post(
        f"/api/v1/organizations/{organization['id']}/members", headers=owner, json={"user_id": invitee_id}
    )
    assert invited.status_code == 201
    assert api.http.get(f"/api/v1/organizations/{organization['id']}", headers=invitee).status_code == 404
    wait_until(lambda: _notification(api, invitee, "profiles.organization.invited"), timeout=30, message="invited")
    mine = api.http.get("/api/v1/organizations/invitations", headers=invitee).json()["items"]
    assert [item["organization_name"] for item in mine] == [organization["name"]]
    accepted = api.http.post(f"/api/v1/organizations/invitations/{mine[0]['id']}/accept", headers=invitee)
    assert accepted.status_code == 200
    assert api.http.get(f"/api/v1/organizations/{organization['id']}", headers=invitee).status_code == 200
