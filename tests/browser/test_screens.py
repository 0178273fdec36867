"""Issue 10's browser test: every role does its job in the browser, on the whole system (real processes,
NATS, the scorer). An SME registers, posts a request with the self-diagnosis and sees ranked experts once
the events have flowed; the broker proposes from the shortlist; the expert accepts; the SME confirms;
both complete and rate; each sees the notification. Every page on the way is checked (axe-core, 390 px
without horizontal scrolling) and photographed at 1280 and 390 px."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.browser.conftest import Screens, make_account
from tests.conftest import PASSWORD, Api, wait_until
from tests.e2e.helpers import create_expert, in_projection, wait_searchable
from tests.factories import registration_number, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PREFECTURE = "32"  # 島根県: the test's own region


def _notified(screens: Screens, words: str) -> None:
    """Reload /notifications until a notification with these words shows (the consumer is asynchronous)."""

    def shown() -> bool:
        screens.page.goto("/notifications")
        return words in screens.page.locator("main").inner_text()

    wait_until(shown, timeout=45, interval=1.0, message=f"a notification saying {words}")


def test_every_role_does_its_job_in_the_browser(chromium_browser, api: Api, system, artifacts) -> None:
    base = system.url("gateway")
    # An expert whose profile their own account owns (verified by an admin), in the test's region.
    expert_name = unique_name()
    skill = f"画面検証{expert_name}"
    expert_email = make_account(api, "expert", f"{expert_name}（専門家）")
    expert_headers = api.login(expert_email)
    profile = create_expert(
        api,
        expert_headers,
        name=expert_name,
        prefectures=[PREFECTURE],
        skills=[skill],
        strengths=[{"topic": "ransomware", "depth": 3}, {"topic": "backup_bcp", "depth": 3}],
        bio="島根県の製造業を中心に、ランサムウェア対策とバックアップ設計を支援しています。",
    )
    wait_until(lambda: in_projection(system, profile["id"]), timeout=60, message="the expert in matching")
    wait_searchable(api, expert_name, profile["id"])
    broker_email = make_account(api, "broker", "しまね商工会議所 相談窓口", [PREFECTURE])
    admin_email = make_account(api, "admin", "運営管理者")
    hub_email = make_account(api, "hub", "しまねDXハブ", [PREFECTURE])

    sme = Screens(chromium_browser, base, artifacts)
    broker = Screens(chromium_browser, base, artifacts)
    expert = Screens(chromium_browser, base, artifacts)
    admin = Screens(chromium_browser, base, artifacts)
    hub = Screens(chromium_browser, base, artifacts)
    try:
        # --- anyone: search and a profile -------------------------------------------------------------
        page = sme.page
        page.goto("/")
        sme.check("home")
        # Keyboard: the first Tab reaches the skip link, Enter moves to the main content.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        page.fill("#f-q", expert_name)
        page.select_option("#f-prefecture", PREFECTURE)
        page.click("form[role=search] button[type=submit]")
        page.wait_for_selector(".card")
        assert expert_name in page.locator(".results").inner_text()
        sme.check("search-results")
        page.click(f"a[href='/experts/{profile['id']}']")
        page.wait_for_selector("#expert-name")
        assert "ランサムウェア" in page.locator("main").inner_text()
        sme.check("expert-profile")

        # --- the SME registers (a wrong form keeps what was typed and marks the field) -----------------
        page.goto("/register")
        sme.check("register")
        sme_email = f"sme-{uuid.uuid4().hex[:10]}@example.jp"
        page.fill("#f-display_name", "株式会社しまね精工 総務部")
        page.fill("#f-email", sme_email)
        page.fill("#f-password", PASSWORD)
        page.fill("#f-password_confirm", "違うパスワード")
        page.click("form[action='/register'] button[type=submit]")
        assert page.locator("#f-password_confirm[aria-invalid=true]").count() == 1
        assert page.locator("#f-email").input_value() == sme_email
        sme.check("register-error")
        page.fill("#f-password", PASSWORD)
        page.fill("#f-password_confirm", PASSWORD)
        page.click("form[action='/register'] button[type=submit]")
        page.wait_for_url(re.compile(r".*/requests/new$"))

        # --- the request with the self-diagnosis: first without a title (kept and marked) -------------
        assert page.locator(".question").count() == 25
        sme.check("request-new")
        title = f"ランサムウェアに備えたい {expert_name}"
        page.select_option("#f-prefecture", PREFECTURE)
        page.check("#t-ransomware")
        for number in range(1, 26):
            answer = "yes" if number % 3 == 0 else ("no" if number % 3 == 1 else "unknown")
            page.check(f"input[name=q{number}][value={answer}]")
        page.select_option("#f-delivery", "remote")
        page.fill("#f-budget_yen_max", "300,000円")
        page.select_option("#f-urgency", "high")
        page.fill("#f-skills", skill)
        page.click("button[name=action][value=submit]")
        assert page.locator("#f-title[aria-invalid=true]").count() == 1
        assert page.locator("#title-error").inner_text()
        assert page.locator("#f-budget_yen_max").input_value() == "300,000円"
        assert page.locator("input[name=q4][value=no]").is_checked()
        sme.check("request-new-error")
        page.fill("#f-title", title)
        page.click("button[name=action][value=submit]")
        page.wait_for_url(re.compile(r".*/requests/[0-9a-f-]+$"))
        request_id = page.url.rsplit("/", 1)[1]
        assert "相談を受け付けました" in page.locator(".flash").inner_text()
        # The ranking section polls (htmx) until the scorer has ranked the request.
        page.wait_for_selector("#ranking ol.ranking li", timeout=90_000)
        assert expert_name in page.locator("#ranking").inner_text()
        sme.check("request-ranked")
        page.goto("/requests")
        assert title in page.locator("main").inner_text()
        sme.check("requests")

        # --- the broker proposes from the shortlist ---------------------------------------------------
        broker.sign_in(broker_email)
        bp = broker.page
        assert bp.url.endswith("/broker")
        assert title in bp.locator("main").inner_text()
        assert "支援機関: 専門家の提案待ち" in bp.locator("main").inner_text()
        broker.check("broker")
        bp.click(f"a[href='/broker/requests/{request_id}']")
        bp.wait_for_selector("#ranking ol.ranking li")
        broker.check("broker-request")
        form = bp.locator(f"form.propose:has(input[name=expert_id][value='{profile['id']}'])")
        form.locator("textarea").fill("島根でランサムウェア対策の実績が豊富な方です。")
        form.locator("button[type=submit]").click()
        bp.wait_for_load_state()
        assert "提案しました" in bp.locator(".flash").inner_text()
        bp.goto("/map")
        assert bp.locator(".tile").count() == 47
        assert bp.locator("table th[scope=row]").count() == 47
        broker.check("map")

        # --- the expert is told, and accepts ----------------------------------------------------------
        expert.sign_in(expert_email)
        _notified(expert, "提案")
        expert.check("notifications-expert")
        xp = expert.page
        xp.goto("/me/proposals")
        assert title in xp.locator("main").inner_text()
        expert.check("proposals")
        xp.click("form[action$='/accept'] button[type=submit]")
        xp.wait_for_load_state()
        assert "承諾しました" in xp.locator(".flash").inner_text()
        xp.goto("/me/profile")
        expert.check("profile")

        # --- the SME is told, confirms, completes and rates -------------------------------------------
        _notified(sme, "確定")
        sme.check("notifications-sme")
        page.goto(f"/requests/{request_id}")
        page.click("form[action$='/confirm'] button[type=submit]")
        page.wait_for_load_state()
        assert "専門家を決定しました" in page.locator(".flash").inner_text()
        assert "支援中" in page.locator("main").inner_text()
        assert "選ばれた理由" in page.locator("#proposals-title + ul").inner_text()
        sme.check("request-matched")
        page.click("form[action$='/complete'] button[type=submit]")
        page.wait_for_load_state()
        page.check("form.rate input[name=stars][value='5']")
        page.fill("form.rate textarea", "手順書まで作っていただき助かりました")
        page.click("form.rate button[type=submit]")
        page.wait_for_load_state()
        assert "評価を送りました" in page.locator(".flash").inner_text()
        sme.check("request-completed")

        # --- an SME that signed up alone registers its company from /requests ------------------------------
        page.goto("/requests")
        page.click("details.panel summary")
        page.fill("#f-name", "株式会社しまね精工")
        page.select_option("#f-prefecture", PREFECTURE)
        page.click("form[action='/organizations/new'] button[type=submit]")
        page.wait_for_load_state()
        assert "株式会社しまね精工を登録しました" in page.locator(".flash").inner_text()
        assert "会社: 株式会社しまね精工（島根県）" in page.locator("main").inner_text()

        # --- the expert rates back; each side sees the other's rating notification --------------------
        _notified(expert, "評価")
        xp.goto("/engagements")
        expert.check("engagements")
        xp.click("a[href^='/engagements/']")
        xp.wait_for_selector("form.rate")
        expert.check("engagement")
        xp.check("form.rate input[name=stars][value='4']")
        xp.click("form.rate button[type=submit]")
        xp.wait_for_load_state()
        assert "評価を送りました" in xp.locator(".flash").inner_text()
        _notified(sme, "評価")
        bp.goto(f"/broker/requests/{request_id}")
        assert "完了" in bp.locator("main").inner_text()
        broker.check("broker-request-completed")

        # --- the admin's screen ---------------------------------------------------------------------------
        admin.sign_in(admin_email)
        assert admin.page.url.endswith("/admin")
        assert "ログインの記録" in admin.page.locator("main").inner_text()
        assert f"{expert_name}（専門家） <{expert_email}>" in admin.page.locator("#audit").inner_text()
        # The list's CSV: one good row, one with a registration number that is not six digits.
        csv = (
            "種別,登録番号,氏名,登録年月日,対応都道府県,得意分野\n"
            f"登録セキスペ,{registration_number()},{unique_name()},2025-04-01,島根県,ランサムウェア対策:2\n"
            f"登録セキスペ,12AB,{unique_name()},2025-04-01,島根県,ランサムウェア対策:2\n"
        ).encode()
        admin.page.set_input_files("#f-file", files=[{"name": "名簿.csv", "mimeType": "text/csv", "buffer": csv}])
        admin.page.click("form[action='/admin/import'] button[type=submit]")
        admin.page.wait_for_selector("#report-title")
        report = admin.page.locator("#import").inner_text()
        assert "取り込めなかった行" in report and "登録番号" in report
        admin.check("admin")

        # --- hub staff: their projects and 相談会; the broker's queue read only ------------------------
        hub.sign_in(hub_email)
        assert hub.page.url.endswith("/hub")
        hub.check("hub")
        hub.page.goto(f"/broker/requests/{request_id}")
        assert hub.page.locator("form.propose").count() == 0
        hub.page.goto("/logout")
        hub.check("logout")
        hub.page.click("main form[action='/logout'] button[type=submit]")
        hub.page.wait_for_url(re.compile(r".*/login$"))
        assert "ログアウトしました" in hub.page.locator(".flash").inner_text()
        hub.check("login")

        # --- an expired access cookie: /login resumes the session with the refresh cookie and goes back ---
        sme.context.clear_cookies(name="tsunagu_session")
        page.goto("/requests")
        page.wait_for_url(re.compile(r".*/requests$"), timeout=15_000)
        assert title in page.locator("main").inner_text()

        # --- errors as pages; forms refused without their token ------------------------------------------
        page.goto("/requests/00000000-0000-0000-0000-000000000000")
        assert "見つかりません" in page.locator("h1").inner_text()
        sme.check("error-404")
        forged = sme.context.request.post(f"{base}/requests/{request_id}/cancel", form={"reason": "偽の取消し"})
        assert forged.status == 403 and "フォームの送信を確認できませんでした" in forged.text()
        page.goto(f"/requests/{request_id}")
        assert "取消し" not in page.locator("main p").first.inner_text()
    finally:
        for screens in (sme, broker, expert, admin, hub):
            screens.close()
