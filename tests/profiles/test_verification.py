"""Verified experts (issue 9): an entry an expert account creates is pending until an admin checks it against
the official register; pending entries are not public, not listed, send nothing to search or matching; an
admin verifies or rejects with a reason (the claimant is told); a registration number already held becomes a
contested claim for the admin; imports are verified by definition."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.profiles.models import RegistrationClaim
from services.profiles.settings import ProfilesSettings
from tests.profiles.conftest import Auth, create_listed, csv_bytes, expert_body, field_names, outbox, run
from tsunagu.auth import Role
from tsunagu.events import Subjects

LISTING = {Subjects.EXPERT_UPSERTED, Subjects.EXPERT_PUBLISHED}


def _listing_events(engine: Engine, expert_id: str) -> list:
    return [event for event in outbox(engine) if event.type in LISTING and event.subject_id == expert_id]


def test_an_experts_own_entry_is_pending_and_hidden_until_verified(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    owner = auth(Role.EXPERT, "claimant")
    response = client.post("/experts", json=expert_body(name="名乗り 太郎"), headers=owner)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["verification"] == "pending" and created["verification_reason"] is None
    url = f"/experts/{created['id']}"

    # Nothing about it leaves the service: search cannot index it, matching cannot rank it.
    assert _listing_events(engine, created["id"]) == []
    # Only the owner and admins see it; to everyone else it does not exist (and nothing of it shows).
    assert client.get(url, headers=owner).json()["verification"] == "pending"
    assert client.get("/experts/me", headers=owner).status_code == 200
    assert client.get(url, headers=auth(Role.ADMIN)).status_code == 200
    for who in (
        {},
        auth(Role.SME, "sme"),
        auth(Role.EXPERT, "other"),
        auth(Role.BROKER, "b", prefectures=["13"]),
        auth(Role.HUB, "h", prefectures=["13"]),
    ):
        denied = client.get(url, headers=who)
        assert denied.status_code == 404 and "名乗り" not in denied.text and "012345" not in denied.text
    assert client.get("/experts", headers=auth(Role.BROKER, "b", prefectures=["13"])).json()["total"] == 0
    # Changes by the owner while pending still send nothing.
    assert client.patch(url, json={"bio": "よろしく"}, headers=owner).status_code == 200
    assert _listing_events(engine, created["id"]) == []

    # The admin sees it among the pending entries and verifies it.
    pending = client.get("/admin/experts/pending", headers=auth(Role.ADMIN)).json()
    assert [item["id"] for item in pending["items"]] == [created["id"]] and pending["total"] == 1
    assert client.get("/admin/experts/pending", headers=owner).status_code == 403
    assert client.post(f"/admin/experts/{created['id']}/verify", headers=owner).status_code == 403
    verified = client.post(f"/admin/experts/{created['id']}/verify", headers=auth(Role.ADMIN, "admin-1"))
    assert verified.status_code == 200 and verified.json()["verification"] == "verified"

    events = _listing_events(engine, created["id"])
    assert {event.type for event in events} == LISTING
    assert {event.entity_version for event in events} == {verified.json()["version"]}
    told = outbox(engine, Subjects.EXPERT_VERIFIED)
    assert len(told) == 1 and told[0].data["user_id"] == "claimant" and told[0].data["registration_number"] == "012345"
    assert client.get(url).json()["name"] == "名乗り 太郎"
    assert client.get("/experts", headers=auth(Role.BROKER, "b", prefectures=["13"])).json()["total"] == 1
    assert client.get("/admin/experts/pending", headers=auth(Role.ADMIN)).json()["total"] == 0
    # Verifying again changes nothing.
    written = len(outbox(engine))
    assert client.post(f"/admin/experts/{created['id']}/verify", headers=auth(Role.ADMIN)).status_code == 200
    assert len(outbox(engine)) == written


def test_a_rejection_keeps_the_entry_off_the_list_and_tells_the_expert_why(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    owner = auth(Role.EXPERT, "impostor")
    created = client.post("/experts", json=expert_body(), headers=owner).json()
    admin = auth(Role.ADMIN)
    assert client.post(f"/admin/experts/{created['id']}/reject", json={}, headers=admin).status_code == 422
    blank = client.post(f"/admin/experts/{created['id']}/reject", json={"reason": "  "}, headers=admin)
    assert blank.status_code == 422 and "reason" in field_names(blank)
    reason = "登録簿の氏名と一致しません"
    rejected = client.post(f"/admin/experts/{created['id']}/reject", json={"reason": reason}, headers=admin)
    assert rejected.status_code == 200 and rejected.json()["verification"] == "rejected"

    mine = client.get("/experts/me", headers=owner).json()
    assert mine["verification"] == "rejected" and mine["verification_reason"] == reason
    assert client.get(f"/experts/{created['id']}").status_code == 404
    assert _listing_events(engine, created["id"]) == []
    told = outbox(engine, Subjects.EXPERT_REJECTED)
    assert len(told) == 1 and told[0].data["user_id"] == "impostor" and told[0].data["reason"] == reason
    listed = client.get("/admin/experts/pending", params={"status": "rejected"}, headers=admin).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]

    # A verified entry is corrected, not rejected.
    verified = create_listed(client, auth, expert_body(registration_number="765432"), "real").json()
    refused = client.post(f"/admin/experts/{verified['id']}/reject", json={"reason": "x"}, headers=admin)
    assert refused.status_code == 409
    assert client.post("/admin/experts/no-such-id/verify", headers=admin).status_code == 404


def test_a_number_already_held_is_a_409_and_a_contested_claim_for_the_admin(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    held = create_listed(client, auth, expert_body(name="本物 太郎"), "holder").json()
    claimant = auth(Role.EXPERT, "claimant")
    body = expert_body(registration_number="第０１２３４５号", name="本物 太郎", bio="私が本人です")
    response = client.post("/experts", json=body, headers=claimant)
    assert response.status_code == 409 and field_names(response) == {"registration_number"}
    error = response.json()["error"]
    assert error["code"] == "registration_number_claimed" and "012345" in error["message_ja"]
    assert "admin" in error["message_en"]
    # Asking again files nothing new; the claimant has no entry; nothing was published.
    written = len(outbox(engine))
    assert client.post("/experts", json=body, headers=claimant).status_code == 409
    assert client.get("/experts/me", headers=claimant).status_code == 404
    assert len(outbox(engine)) == written

    admin = auth(Role.ADMIN, "admin-1")
    claims = client.get("/admin/experts/claims", headers=admin).json()
    assert claims["total"] == 1
    claim = claims["items"][0]
    assert claim["registration_number"] == "012345" and claim["claimant_user_id"] == "claimant"
    assert claim["expert_id"] == held["id"] and claim["held_by_user_id"] == "holder"
    assert claim["held_entry_verification"] == "verified" and claim["submitted"]["bio"] == "私が本人です"
    for who in (claimant, auth(Role.BROKER, "b", prefectures=["13"]), {}):
        assert client.get("/admin/experts/claims", headers=who).status_code in (401, 403)

    # Checked against the register: the claimant holds the number. The entry (the operator's data) is theirs.
    accepted = client.post(f"/admin/experts/claims/{claim['id']}/accept", headers=admin)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    mine = client.get("/experts/me", headers=claimant).json()
    assert mine["id"] == held["id"] and mine["verification"] == "verified" and mine.get("bio") != "私が本人です"
    assert client.get("/experts/me", headers=auth(Role.EXPERT, "holder")).status_code == 404
    verified = outbox(engine, Subjects.EXPERT_VERIFIED)[-1]
    rejected = outbox(engine, Subjects.EXPERT_REJECTED)[-1]
    assert verified.data["user_id"] == "claimant" and verified.data["claim_id"] == claim["id"]
    assert rejected.data["user_id"] == "holder" and rejected.data["reason"]
    assert client.post(f"/admin/experts/claims/{claim['id']}/accept", headers=admin).status_code == 409


def test_a_rejected_claim_changes_nothing_but_tells_the_claimant(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    held = create_listed(client, auth, expert_body(), "holder").json()
    client.post("/experts", json=expert_body(), headers=auth(Role.EXPERT, "pretender"))
    with Session(engine) as session:
        claim = session.exec(select(RegistrationClaim)).one()
    admin = auth(Role.ADMIN)
    rejected = client.post(
        f"/admin/experts/claims/{claim.id}/reject", json={"reason": "登録簿の氏名と異なります"}, headers=admin
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert client.get("/experts/me", headers=auth(Role.EXPERT, "holder")).json()["id"] == held["id"]
    told = outbox(engine, Subjects.EXPERT_REJECTED)[-1]
    assert told.data["user_id"] == "pretender" and told.data["reason"] == "登録簿の氏名と異なります"
    assert client.get("/admin/experts/claims", headers=admin).json()["total"] == 0
    assert client.get("/admin/experts/claims", params={"status": "rejected"}, headers=admin).json()["total"] == 1


def test_a_claim_on_an_unverified_entry_takes_the_claimants_profile(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    """An impostor's pending entry holds the number; the real holder's claim, once accepted, replaces it."""
    impostor = client.post("/experts", json=expert_body(name="偽者 次郎"), headers=auth(Role.EXPERT, "impostor")).json()
    real = auth(Role.EXPERT, "real")
    assert client.post("/experts", json=expert_body(name="本人 太郎"), headers=real).status_code == 409
    claim = client.get("/admin/experts/claims", headers=auth(Role.ADMIN)).json()["items"][0]
    assert claim["held_entry_verification"] == "pending"
    assert client.post(f"/admin/experts/claims/{claim['id']}/accept", headers=auth(Role.ADMIN)).status_code == 200
    mine = client.get("/experts/me", headers=real).json()
    assert mine["id"] == impostor["id"] and mine["name"] == "本人 太郎" and mine["verification"] == "verified"
    assert [event.data["name"] for event in outbox(engine, Subjects.EXPERT_PUBLISHED)] == ["本人 太郎"]


def test_an_admin_and_the_import_create_verified_entries_and_an_import_naming_the_account_verifies(
    client: TestClient, auth: Auth, engine: Engine, settings: ProfilesSettings
) -> None:
    by_admin = client.post("/experts", json=expert_body(registration_number="111111"), headers=auth(Role.ADMIN))
    assert by_admin.json()["verification"] == "verified"
    report = run(engine, settings, csv_bytes([expert_body(registration_number="222222")]))
    assert report["created"] == 1
    listed = client.get("/experts", headers=auth(Role.ADMIN), params={"verification": "verified"}).json()
    assert listed["total"] == 2

    pending = client.post(
        "/experts", json=expert_body(registration_number="333333"), headers=auth(Role.EXPERT, "e-3")
    ).json()
    # A row that only updates the data leaves the claim open; a row naming the account verifies it.
    run(engine, settings, csv_bytes([expert_body(registration_number="333333", bio="名簿の更新")]))
    assert client.get(f"/experts/{pending['id']}", headers=auth(Role.ADMIN)).json()["verification"] == "pending"
    run(engine, settings, csv_bytes([expert_body(registration_number="333333", owner_user_id="e-3")]))
    assert client.get(f"/experts/{pending['id']}", headers=auth(Role.ADMIN)).json()["verification"] == "verified"
    assert outbox(engine, Subjects.EXPERT_VERIFIED)[-1].data["user_id"] == "e-3"
    assert {e.subject_id for e in outbox(engine, Subjects.EXPERT_PUBLISHED)} >= {pending["id"]}
    # The export holds listed entries only, so a pending claim is never verified by re-importing an export.
    other = client.post(
        "/experts", json=expert_body(registration_number="444444"), headers=auth(Role.EXPERT, "e-4")
    ).json()
    exported = client.get("/admin/experts/export", headers=auth(Role.ADMIN)).content.decode("utf-8-sig")
    assert "444444" not in exported and "333333" in exported
    assert other["verification"] == "pending"
