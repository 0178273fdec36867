"""Issue 10's screens for issue 11 in the browser, on the whole system: a broker plans a 相談会 (a wrong
time slot first: the page keeps what was typed and names the field), an SME registers for it with a topic,
the broker previews the plan, then publishes it, and the SME sees their meeting with its reason. Hub staff
create a project on /hub, form its team from learners who finished the case study (each with the reason),
exclude one, solve again, and confirm the team. Every page
on the way passes axe-core and has no horizontal scrolling at 390 px (``Screens.check``)."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.conftest import Screens, make_account
from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_organization, in_projection
from tests.factories import dx_body, expert_body, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PREFECTURE = "31"  # 鳥取県: this module's own region


def test_a_broker_plans_a_day_an_sme_registers_and_sees_the_meeting(chromium_browser, api: Api, system, artifacts):
    base = system.url("gateway")
    expert_name = unique_name()
    # An entry the operator creates (verified at once), with a fresh admin: a cached token may have expired
    # by the time a long run reaches this module.
    created = api.http.post(
        "/api/v1/experts", headers=api.account("admin"), json=expert_body(name=expert_name, prefectures=[PREFECTURE])
    )
    assert created.status_code == 201, created.text
    profile = created.json()
    wait_until(lambda: in_projection(system, profile["id"]), timeout=60, message="the expert in matching")
    broker_email = make_account(api, "broker", "とっとり商工会議所 相談窓口", [PREFECTURE])
    sme_email = make_account(api, "sme", "鳥取 精機")
    company = create_organization(
        api, system, api.login(sme_email), name=f"鳥取精機 {uuid.uuid4().hex[:6]}", prefecture=PREFECTURE
    )
    title = f"鳥取 セキュリティ相談会 {uuid.uuid4().hex[:6]}"

    broker = Screens(chromium_browser, base, artifacts)
    sme = Screens(chromium_browser, base, artifacts)
    try:
        broker.sign_in(broker_email)
        page = broker.page
        page.click(".site-nav a[href='/broker/sessions']")  # the menu leads to the consultation days
        page.wait_for_selector("a[href='/broker/sessions/new']")
        assert page.locator(".site-nav a[aria-current=page]").inner_text() == "相談会"
        broker.check("broker-sessions")
        page.click("a[href='/broker/sessions/new']")
        page.wait_for_selector("#f-title")
        page.fill("#f-title", title)
        page.fill("#f-date", "2027-02-10")
        page.select_option("#f-venue_prefecture", PREFECTURE)
        page.fill("#f-venue", "鳥取商工会議所 3階")
        page.fill("#f-slot_start_0", "11:00")
        page.fill("#f-slot_end_0", "10:30")  # ends before it starts
        page.fill("#f-expert_id_0", profile["id"])
        page.fill("#f-expert_max_0", "1")
        broker.check("session-new")
        page.click("form[action='/broker/sessions/new'] button[type=submit]")
        page.wait_for_selector("#error-summary")
        assert page.locator("#f-slots").get_attribute("aria-describedby") == "slots-error"
        assert page.input_value("#f-title") == title  # what was typed is kept
        assert page.input_value("#f-expert_id_0") == profile["id"]
        broker.check("session-new-error")
        page.fill("#f-slot_start_0", "10:00")
        page.fill("#f-slot_end_0", "10:45")
        page.click("form[action='/broker/sessions/new'] button[type=submit]")
        page.wait_for_selector("#session-state")
        assert "相談会を作成しました" in page.locator(".flash").inner_text()
        session_path = page.url.split(base)[-1]
        session_id = session_path.rsplit("/", 1)[-1]
        assert expert_name in page.locator("main").inner_text()
        broker.check("broker-session")

        sme.sign_in(sme_email)
        page = sme.page
        page.click(".site-nav a[href='/sessions']")
        page.wait_for_selector(f"a[href='/sessions/{session_id}']")
        sme.check("sessions")
        page.click(f"a[href='/sessions/{session_id}']")
        page.wait_for_selector("form[action$='/register']")
        page.click("form[action$='/register'] button[type=submit]")  # nothing chosen: the page says what is missing
        page.wait_for_selector("#error-summary")
        page.check("#t-ransomware")
        sme.check("session-register")
        page.click("form[action$='/register'] button[type=submit]")
        page.wait_for_selector(".flash")
        assert "申し込みました" in page.locator(".flash").inner_text()
        assert "申込み済み" in page.locator("main").inner_text()

        page = broker.page
        page.goto(session_path)
        assert "1社" in page.locator("#registration-count").inner_text()
        page.click("button[value=preview]")
        page.wait_for_selector("#meetings")
        assert "まだ公開していません" in page.locator("main").inner_text()
        assert expert_name in page.locator("#meetings").inner_text()
        assert company["name"] in page.locator("#meetings").inner_text()  # registered for the company
        broker.check("broker-session-preview")
        page.click("button[value=publish]")
        page.wait_for_selector(".flash")
        assert "割当てを公開しました" in page.locator(".flash").inner_text()
        assert "公開済み" in page.locator("#session-state").inner_text()
        assert "10:00" in page.locator("#meetings").inner_text()
        broker.check("broker-session-published")
        schedule = page.request.get(f"/api/v1/sessions/{session_id}/schedule.csv")  # the page's link, same cookie
        assert schedule.status == 200 and expert_name in schedule.text()

        page = sme.page
        page.goto(f"/sessions/{session_id}")
        mine = page.locator("#my-meetings").inner_text()
        assert expert_name in mine and "10:00" in mine
        sme.check("session-meeting")
    finally:
        broker.close()
        sme.close()


def test_hub_staff_create_a_project_and_confirm_its_team(chromium_browser, api: Api, system, artifacts):
    base = system.url("gateway")
    admin = api.account("admin")
    learners = []
    for index, roles in enumerate(({"data_scientist": 3}, {"software_engineer": 3}, {"data_scientist": 2})):
        body = dx_body(
            external_id=f"MDQ-WEB-{uuid.uuid4().hex[:8]}",
            name=f"{unique_name()}{index}",
            prefectures=[PREFECTURE],
            dss_roles=[{"role": role, "level": level} for role, level in roles.items()],
        )
        response = api.http.post("/api/v1/experts", headers=admin, json=body)
        assert response.status_code == 201, response.text
        learners.append(response.json())
    for learner in learners:
        wait_until(lambda learner=learner: in_projection(system, learner["id"]), timeout=60, message="a learner")
    hub_email = make_account(api, "hub", "とっとりDXハブ", [PREFECTURE])
    title = f"需要予測で在庫を減らす {uuid.uuid4().hex[:6]}"

    hub = Screens(chromium_browser, base, artifacts)
    try:
        hub.sign_in(hub_email)
        page = hub.page
        page.goto("/hub")
        page.click("a[href='/hub/projects/new']")
        page.wait_for_selector("#f-title")
        page.fill("#f-title", title)
        page.fill("#f-sme_name", "株式会社鳥取テスト食品")
        page.select_option("#f-prefecture", PREFECTURE)
        page.check("#f-remote_ok")
        page.select_option("#f-role_0", "data_scientist")
        page.select_option("#f-role_1", "software_engineer")
        page.fill("#f-team_size", "2")
        page.click("form[action='/hub/projects/new'] button[type=submit]")  # no topic: named, the rest kept
        page.wait_for_selector("#error-summary")
        assert page.input_value("#f-title") == title
        assert page.locator("#f-topics").get_attribute("aria-describedby") == "topics-error"
        hub.check("hub-project-new-error")
        page.check("#t-demand_forecast")
        page.click("form[action='/hub/projects/new'] button[type=submit]")
        page.wait_for_selector("#project-state")
        assert "プロジェクトを作成しました" in page.locator(".flash").inner_text()
        project_path = page.url.split(base)[-1]
        hub.check("hub-project")

        def full_team() -> bool:
            page.click("#solve-team")
            page.wait_for_selector(".flash")
            return page.locator("#members tbody tr").count() >= 2

        wait_until(full_team, timeout=60, interval=1.0, message="a team of two")
        assert "チームを編成しました" in page.locator(".flash").inner_text()
        members = page.locator("#members").inner_text()
        assert any(learner["name"] in members for learner in learners)
        hub.check("hub-project-team")
        first = page.locator("#members tbody tr").first.inner_text()
        excluded = next(learner for learner in learners if learner["name"] in first)
        page.click(f"button[name=exclude][value='{excluded['id']}']")
        page.wait_for_selector(".flash")
        assert "除外して" in page.locator(".flash").inner_text()
        assert excluded["name"] not in page.locator("#members").inner_text()
        page.click("#confirm-team")
        page.wait_for_selector(".flash")
        assert "チームを確定しました" in page.locator(".flash").inner_text()
        assert "チーム確定" in page.locator("#project-state").inner_text()
        assert page.locator("#solve-team").count() == 0
        hub.check("hub-project-confirmed")
        page.goto("/hub")
        assert title in page.locator("main").inner_text()
        hub.check("hub")
        assert page.url.endswith("/hub") and project_path.startswith("/hub/projects/")
    finally:
        hub.close()
