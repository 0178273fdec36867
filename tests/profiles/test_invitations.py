"""Joining an organisation takes the user's consent (issue 9): a member invites, the invited user lists their
invitations and accepts or declines; until they accept they are not a member and see nothing of the
organisation (but its name on the invitation); nobody else can answer for them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.factories import organization_body
from tests.profiles.conftest import Auth, field_names, outbox
from tsunagu.auth import Role
from tsunagu.events import Subjects


def _organization(client: TestClient, auth: Auth) -> dict:
    response = client.post(
        "/organizations", json=organization_body(employees=42, industry="酒造業"), headers=auth(Role.SME, "owner")
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_an_invited_user_is_not_a_member_until_they_accept(client: TestClient, auth: Auth, engine: Engine) -> None:
    organization = _organization(client, auth)
    url = f"/organizations/{organization['id']}"
    invitee = auth(Role.SME, "invitee")
    invited = client.post(f"{url}/members", json={"user_id": "invitee"}, headers=auth(Role.SME, "owner"))
    assert invited.status_code == 201 and invited.json()["status"] == "pending"
    invitation = invited.json()
    assert invitation["organization_name"] == organization["name"] and invitation["invited_by"] == "owner"
    event = outbox(engine, Subjects.ORGANIZATION_INVITED)[-1]
    assert event.data["user_id"] == "invitee" and event.data["organization_name"] == organization["name"]
    # Not a member: the organisation does not exist for them, and the SME's projection does not name them.
    denied = client.get(url, headers=invitee)
    assert denied.status_code == 404 and organization["name"] not in denied.text and "酒造業" not in denied.text
    assert client.get("/organizations", headers=invitee).json()["total"] == 0
    assert outbox(engine, Subjects.ORGANIZATION_UPSERTED)[-1].data["member_user_ids"] == ["owner"]
    assert client.patch(url, json={"employees": 1}, headers=invitee).status_code == 404
    # Inviting again returns the same pending invitation.
    again = client.post(f"{url}/members", json={"user_id": "invitee"}, headers=auth(Role.SME, "owner"))
    assert again.json()["id"] == invitation["id"]

    mine = client.get("/organizations/invitations", headers=invitee).json()
    assert [item["id"] for item in mine["items"]] == [invitation["id"]] and mine["total"] == 1
    assert client.get("/organizations/invitations", headers=auth(Role.SME, "owner")).json()["total"] == 0
    assert client.get("/organizations/invitations").status_code == 401
    # Nobody but the invitee answers: the invitation does not exist for anyone else.
    for other in (auth(Role.SME, "owner"), auth(Role.SME, "stranger"), auth(Role.ADMIN)):
        assert client.post(f"/organizations/invitations/{invitation['id']}/accept", headers=other).status_code == 404

    accepted = client.post(f"/organizations/invitations/{invitation['id']}/accept", headers=invitee)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert client.get(url, headers=invitee).json()["member_user_ids"] == ["invitee", "owner"]
    assert outbox(engine, Subjects.ORGANIZATION_UPSERTED)[-1].data["member_user_ids"] == ["invitee", "owner"]
    assert client.post(f"/organizations/invitations/{invitation['id']}/decline", headers=invitee).status_code == 409
    assert client.get("/organizations/invitations", headers=invitee).json()["total"] == 0
    history = client.get("/organizations/invitations", params={"status": "accepted"}, headers=invitee).json()
    assert history["total"] == 1
    member = client.post(f"{url}/members", json={"user_id": "invitee"}, headers=auth(Role.SME, "owner"))
    assert member.status_code == 409 and field_names(member) == {"user_id"}


def test_a_declined_or_cancelled_invitation_adds_no_one(client: TestClient, auth: Auth, engine: Engine) -> None:
    organization = _organization(client, auth)
    url = f"/organizations/{organization['id']}"
    owner = auth(Role.SME, "owner")
    first = client.post(f"{url}/members", json={"user_id": "no-thanks"}, headers=owner).json()
    declined = client.post(f"/organizations/invitations/{first['id']}/decline", headers=auth(Role.SME, "no-thanks"))
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    second = client.post(f"{url}/members", json={"user_id": "later"}, headers=owner).json()
    listed = client.get(f"{url}/invitations", headers=owner).json()
    assert {item["status"] for item in listed["items"]} == {"declined", "pending"}
    assert client.get(f"{url}/invitations", headers=auth(Role.SME, "later")).status_code == 404
    cancelled = client.delete(f"{url}/invitations/{second['id']}", headers=owner)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    late = client.post(f"/organizations/invitations/{second['id']}/accept", headers=auth(Role.SME, "later"))
    assert late.status_code == 409
    assert client.get(url, headers=owner).json()["member_user_ids"] == ["owner"]
    assert [event.entity_version for event in outbox(engine, Subjects.ORGANIZATION_UPSERTED)] == [1]


def test_only_members_and_admins_invite(client: TestClient, auth: Auth) -> None:
    organization = _organization(client, auth)
    url = f"/organizations/{organization['id']}/members"
    body = {"user_id": "target"}
    assert client.post(url, json=body, headers=auth(Role.SME, "stranger")).status_code == 404
    assert client.post(url, json=body, headers=auth(Role.EXPERT, "e")).status_code == 404
    # A broker of the prefecture reads the organisation but does not invite into it.
    assert client.post(url, json=body, headers=auth(Role.BROKER, "b", prefectures=["13"])).status_code == 403
    assert client.post(url, json=body).status_code == 401
    by_admin = client.post(url, json=body, headers=auth(Role.ADMIN, "admin-1"))
    assert by_admin.status_code == 201 and by_admin.json()["status"] == "pending"
    assert client.get("/organizations/invitations/nope/accept").status_code in (404, 405)
