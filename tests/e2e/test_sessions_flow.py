"""A 相談会 through the gateway with real processes (issue 11): a broker of Okinawa creates a day inviting an
expert who takes one meeting, two SMEs register (one on a topic the expert does not cover), the broker solves and publishes; the served SME and the expert
are told their meeting (time and venue) and the SME left out why, in the app (``/api/v1/notifications``) and by
mail (the local SMTP sink), and the broker hears of each registration. The notification's link, the reader's
own schedule as iCalendar, answers through the gateway."""

from __future__ import annotations

import uuid

import pytest

from launcher.runner import System
from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_expert, create_organization, in_projection
from tests.factories import session_body, unique_name
from tsunagu.mailsink import read_mails

pytestmark = pytest.mark.e2e


def _me(api: Api, headers: dict[str, str]) -> dict:
    response = api.http.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _notified(api: Api, headers: dict[str, str], kind: str, title: str) -> dict:
    def found() -> dict | None:
        response = api.http.get("/api/v1/notifications", headers=headers, params={"limit": 100})
        assert response.status_code == 200, response.text
        return next(
            (item for item in response.json()["items"] if item["kind"] == kind and title in item["body_ja"]), None
        )

    return wait_until(found, timeout=60, message=f"a {kind} notification about {title}")


def _mail(system: System, address: str, subject_part: str):
    return next(
        (mail for mail in read_mails(system.maildir) if mail["To"] == address and subject_part in str(mail["Subject"])),
        None,
    )


def test_a_published_day_tells_the_expert_and_the_smes_in_the_app_and_by_mail(api: Api, system: System) -> None:
    expert = api.register("expert", name="相談会 専門家")
    expert_name = unique_name()
    profile = create_expert(api, expert, name=expert_name, prefectures=["47"])
    wait_until(lambda: in_projection(system, profile["id"]), timeout=60, message="the expert in matching")
    broker = api.account("broker", prefectures=["47"])
    served, left_out = api.register("sme", name="那覇 製作所"), api.register("sme", name="名護 商店")
    organization = create_organization(api, system, served, prefecture="47")
    people = {who: _me(api, h) for who, h in (("expert", expert), ("served", served), ("left out", left_out))}

    title = f"沖縄 相談会 {uuid.uuid4().hex[:8]}"
    body = session_body([profile["id"]], title=title, experts=[{"expert_id": profile["id"], "max_meetings": 1}])
    day = api.http.post("/api/v1/sessions", headers=broker, json=body)
    assert day.status_code == 201, day.text
    day_id = day.json()["id"]

    registration = api.http.post(
        f"/api/v1/sessions/{day_id}/registrations",
        headers=served,
        json={"topics": ["ransomware"], "organization_id": organization["id"]},
    )
    assert registration.status_code == 201, registration.text
    mine = registration.json()
    # The other SME asks about business e-mail compromise, which the one invited expert does not cover.
    other = api.http.post(f"/api/v1/sessions/{day_id}/registrations", headers=left_out, json={"topics": ["bec"]})
    assert other.status_code == 201, other.text
    _notified(api, broker, "matching.session.registered", title)

    plan = api.http.post(f"/api/v1/sessions/{day_id}/assignment", headers=broker)
    assert plan.status_code == 200, plan.text
    assert [m["registration_id"] for m in plan.json()["meetings"]] == [mine["id"]]
    [unserved] = plan.json()["unserved"]
    start, end = body["slots"][plan.json()["meetings"][0]["slot"]].values()

    to_expert = _notified(api, expert, "matching.session.published", title)
    assert to_expert["title_ja"] == "相談会の面談が決まりました"
    assert f"2027-01-20 {start}〜{end}" in to_expert["body_ja"] and "那覇商工会議所（沖縄県）" in to_expert["body_ja"]
    assert organization["name"] in to_expert["body_ja"] and to_expert["body_en"]
    to_served = _notified(api, served, "matching.session.published", title)
    assert expert_name in to_served["body_ja"] and f"{start}〜{end}" in to_served["body_ja"]
    to_left_out = _notified(api, left_out, "matching.session.published", title)
    assert to_left_out["title_ja"] == "相談会の面談を設定できませんでした"
    assert unserved["reason_ja"] in to_left_out["body_ja"] and unserved["reason_en"] in to_left_out["body_en"]

    # The link is the reader's own schedule: the served SME's meeting, as iCalendar, through the gateway.
    calendar = api.http.get(to_served["link"], headers=served)
    assert calendar.status_code == 200 and calendar.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in calendar.text and expert_name in calendar.text

    # And by mail, Japanese subject with English beside.
    for who, subject in (
        ("expert", "相談会の面談が決まりました / Your consultation day meetings"),
        ("served", "相談会の面談が決まりました"),
        ("left out", "相談会の面談を設定できませんでした"),
    ):
        mail = wait_until(
            lambda who=who, subject=subject: _mail(system, people[who]["email"], subject),
            timeout=60,
            message=f"the mail to the {who}",
        )
        text = mail.get_content()
        assert title in text and "Dear " in text
    assert (
        f"/api/v1/sessions/{day_id}/schedule.ics"
        in _mail(system, people["expert"]["email"], "相談会の面談が決まりました").get_content()
    )
