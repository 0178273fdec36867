"""Issue 8's definition of done, through real processes: an SME (with an organisation), a broker of the
request's prefecture and an expert (whose profile their own account owns) take a request from submission
through ranking, proposal, acceptance, confirmation and completion to both ratings, all through the
gateway's public API against real NATS; each step tells the people it concerns in the app
(``/api/v1/notifications``) and by mail (the local SMTP sink the system fixture starts)."""

from __future__ import annotations

import pytest

from launcher.runner import System
from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_expert, create_organization, in_projection, submit_request, wait_ranked
from tests.factories import unique_name
from tsunagu.mailsink import read_mails

pytestmark = pytest.mark.e2e


def _me(api: Api, headers: dict[str, str]) -> dict:
    response = api.http.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _notifications(api: Api, headers: dict[str, str]) -> dict:
    response = api.http.get("/api/v1/notifications", headers=headers, params={"limit": 100})
    assert response.status_code == 200, response.text
    return response.json()


def _wait_notified(api: Api, headers: dict[str, str], kind: str, request_title: str) -> dict:
    """The caller's notification of this kind about this request (waits for the consumer)."""

    def found() -> dict | None:
        return next(
            (
                item
                for item in _notifications(api, headers)["items"]
                if item["kind"] == kind and request_title in item["body_ja"]
            ),
            None,
        )

    return wait_until(found, timeout=30, message=f"a {kind} notification about {request_title}")


def _mails_to(system: System, address: str) -> list:
    return [mail for mail in read_mails(system.maildir) if mail["To"] == address]


def test_from_submission_to_a_rated_engagement_with_notifications(api: Api, system: System) -> None:
    # The expert signs up and writes their own profile (so their account is the profile's owner).
    expert = api.register("expert", name="沖縄 専門家")
    expert_name = unique_name()
    skill = f"仲介検証{expert_name}"
    profile = create_expert(api, expert, name=expert_name, prefectures=["47"], skills=[skill])
    wait_until(lambda: in_projection(system, profile["id"]), timeout=60, message="the expert in matching")

    broker = api.account("broker", prefectures=["47"])
    outsider_broker = api.account("broker", prefectures=["13"])
    sme = api.register("sme", name="那覇 製作所 担当")
    organization = create_organization(api, system, sme, prefecture="47")
    accounts = {who: _me(api, headers) for who, headers in (("expert", expert), ("broker", broker), ("sme", sme))}

    # Submission and ranking.
    title = f"ランサムウェア対策の相談 {expert_name}"
    request = submit_request(api, sme, title=title, prefecture="47", skills=[skill], organization_id=organization["id"])
    ranking = wait_ranked(api, sme, request["id"])
    assert ranking["entries"][0]["expert_id"] == profile["id"]

    # The broker proposes; an outside broker may not even see the request.
    body = {"expert_id": profile["id"], "message": "ご経験から適任と考えます。ご検討ください。"}
    refused = api.http.post(f"/api/v1/requests/{request['id']}/proposals", headers=outsider_broker, json=body)
    assert refused.status_code == 404
    proposed = api.http.post(f"/api/v1/requests/{request['id']}/proposals", headers=broker, json=body)
    assert proposed.status_code == 201, proposed.text
    proposal = proposed.json()
    assert proposal["state"] == "proposed" and proposal["expires_at"]

    # The expert learns of it, in the app and by mail, and accepts it from their list.
    told = _wait_notified(api, expert, "matching.proposal.proposed", title)
    assert told["link"] == "/me/proposals" and told["read_at"] is None and told["title_en"]
    theirs = api.http.get("/api/v1/proposals", headers=expert).json()
    assert proposal["id"] in [item["id"] for item in theirs["items"]]
    accepted = api.http.post(f"/api/v1/proposals/{proposal['id']}/accept", headers=expert)
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted", accepted.text

    # The SME is asked to confirm; only the SME may.
    asked = _wait_notified(api, sme, "matching.proposal.accepted", title)
    assert asked["link"] == f"/requests/{request['id']}" and "確定" in asked["title_ja"]
    assert api.http.post(f"/api/v1/proposals/{proposal['id']}/confirm", headers=expert).status_code == 403
    confirmed = api.http.post(f"/api/v1/proposals/{proposal['id']}/confirm", headers=sme)
    assert confirmed.status_code == 200, confirmed.text
    engagement_id = confirmed.json()["engagement_id"]
    _wait_notified(api, expert, "matching.proposal.confirmed", title)
    _wait_notified(api, broker, "matching.proposal.confirmed", title)
    engagement = api.http.get(f"/api/v1/engagements/{engagement_id}", headers=broker)
    assert engagement.status_code == 200 and engagement.json()["state"] == "active", engagement.text

    # Completion, then each side rates once.
    completed = api.http.post(f"/api/v1/engagements/{engagement_id}/complete", headers=sme)
    assert completed.status_code == 200 and completed.json()["state"] == "completed", completed.text
    invited = _wait_notified(api, expert, "matching.engagement.completed", title)
    assert invited["link"] == f"/engagements/{engagement_id}" and "評価" in invited["title_ja"]
    _wait_notified(api, broker, "matching.request.completed", title)
    rated = api.http.post(
        f"/api/v1/engagements/{engagement_id}/ratings", headers=sme, json={"stars": 5, "comment": "的確な助言でした"}
    )
    assert rated.status_code == 201, rated.text
    _wait_notified(api, expert, "matching.engagement.rated", title)
    rated_back = api.http.post(f"/api/v1/engagements/{engagement_id}/ratings", headers=expert, json={"stars": 4})
    assert rated_back.status_code == 201, rated_back.text
    _wait_notified(api, sme, "matching.engagement.rated", title)
    again = api.http.post(f"/api/v1/engagements/{engagement_id}/ratings", headers=sme, json={"stars": 1})
    assert again.status_code == 409

    # The audit trail of the whole request.
    history = api.http.get(f"/api/v1/requests/{request['id']}/history", headers=sme)
    assert history.status_code == 200, history.text
    steps = [(row["object_type"], row["from_state"], row["to_state"]) for row in _rows(history.json())]
    for step in [
        ("proposal", None, "proposed"),
        ("proposal", "proposed", "accepted"),
        ("proposal", "accepted", "confirmed"),
        ("engagement", "active", "completed"),
    ]:
        assert step in steps

    # Nobody is told of their own act: the SME did not get "confirmed" or "completed" notices of their own.
    sme_kinds = [item["kind"] for item in _notifications(api, sme)["items"] if title in item["body_ja"]]
    assert "matching.engagement.completed" not in sme_kinds
    assert "matching.proposal.proposed" in sme_kinds  # an expert was proposed for their request

    # Reading: only one's own, unread first.
    expert_page = _notifications(api, expert)
    first = expert_page["items"][0]
    assert expert_page["unread"] >= 4 and all(item["read_at"] is None for item in expert_page["items"][:4])
    assert api.http.post(f"/api/v1/notifications/{first['id']}/read", headers=sme).status_code == 404
    read = api.http.post(f"/api/v1/notifications/{first['id']}/read", headers=expert)
    assert read.status_code == 200 and read.json()["read_at"]
    after = _notifications(api, expert)
    assert after["unread"] == expert_page["unread"] - 1 and after["items"][-1]["id"] == first["id"]

    # The mails reached the sink: Japanese subject with English beside, the link to the page.
    def mails_for_everyone() -> bool:
        return all(_mails_to(system, accounts[who]["email"]) for who in ("expert", "broker", "sme"))

    wait_until(mails_for_everyone, timeout=30, message="mails to the expert, the broker and the SME")
    expert_subjects = [str(mail["Subject"]) for mail in _mails_to(system, accounts["expert"]["email"])]
    assert any(
        "相談の提案が届きました" in subject and " / You have been proposed" in subject for subject in expert_subjects
    )
    proposed_mail = next(
        mail for mail in _mails_to(system, accounts["expert"]["email"]) if "提案が届きました" in str(mail["Subject"])
    )
    text = proposed_mail.get_content()
    assert title in text and "/me/proposals" in text and "Please accept or decline" in text
    wait_until(
        lambda: any("確定" in str(mail["Subject"]) for mail in _mails_to(system, accounts["sme"]["email"])),
        timeout=30,
        message="the SME's mail asking to confirm",
    )


def _rows(history: dict | list) -> list[dict]:
    return history["items"] if isinstance(history, dict) else history
