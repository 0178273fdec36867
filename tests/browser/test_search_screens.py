"""The support staff's search screen (/broker/search, issue 12) in the browser, on the whole system: a broker
finds the open requests of their prefecture by a word of the request, the word marked; narrows them by
state with the counts shown; never sees a request of another prefecture with the same word; hub staff find
a hub project the same way. Every page on the way is checked (axe-core, 390 px without horizontal
scrolling) and photographed."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.conftest import Screens, make_account
from tests.conftest import Api, wait_until
from tests.e2e.helpers import submit_request
from tests.factories import project_body

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PREFECTURE = "36"  # 徳島県: the test's own region
ELSEWHERE = "13"


def _searchable(api: Api, headers: dict[str, str], index: str, word: str, count: int) -> bool:
    response = api.http.get(f"/api/v1/search/{index}", params={"q": word}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["total"] == count


def test_brokers_and_hub_staff_search_their_requests_and_projects(chromium_browser, api: Api, system, artifacts):
    word = "画面検索" + uuid.uuid4().hex[:6]
    sme = api.register("sme")
    mine = submit_request(api, sme, title=f"{word}で受発注を見直したい", prefecture=PREFECTURE)
    submit_request(api, sme, title=f"{word}の東京の相談", prefecture=ELSEWHERE)  # never shown to this broker
    broker_email = make_account(api, "broker", "とくしま商工会議所 相談窓口", [PREFECTURE])
    hub_email = make_account(api, "hub", "とくしまDXハブ", [PREFECTURE])
    hub_headers = api.login(hub_email)
    created = api.http.post(
        "/api/v1/projects",
        headers=hub_headers,
        json=project_body(title=f"{word}の需要予測", prefecture=PREFECTURE),
    )
    assert created.status_code == 201, created.text
    broker_headers = api.login(broker_email)
    wait_until(lambda: _searchable(api, broker_headers, "requests", word, 1), timeout=60, message="the request indexed")
    wait_until(lambda: _searchable(api, hub_headers, "projects", word, 1), timeout=60, message="the project indexed")

    broker = Screens(chromium_browser, system.url("gateway"), artifacts)
    hub = Screens(chromium_browser, system.url("gateway"), artifacts)
    try:
        broker.sign_in(broker_email)
        page = broker.page
        page.click("nav a[href='/broker/search']")
        page.wait_for_selector("form[role=search]")
        assert page.locator("nav a[href='/broker/search']").get_attribute("aria-current") == "page"
        page.fill("#f-q", word)
        page.click("form[role=search] button[type=submit]")
        page.wait_for_selector(".results")
        results = page.locator(".results")
        assert "1件" in results.locator("h2").inner_text()
        title = results.locator(".card h3 a")
        assert title.get_attribute("href") == f"/broker/requests/{mine['id']}"
        assert title.locator("mark").inner_text() == word  # the matched word, marked
        assert "東京" not in results.inner_text()  # the other prefecture's request: not shown, not counted
        facet = page.locator(".facets a", has_text="受付中")
        assert "（1）" in facet.inner_text()
        broker.check("broker-search")
        facet.click()
        page.wait_for_selector(".results")
        assert "state=open" in page.url and "1件" in page.locator(".results h2").inner_text()
        assert page.locator(".facets a[aria-current=true]", has_text="受付中").count() == 1
        assert page.locator(".facets a", has_text="完了").count() == 0  # no completed request: no such choice
        page.click(f"a[href='/broker/requests/{mine['id']}']")
        page.wait_for_load_state()
        assert word in page.locator("main").inner_text()

        hub.sign_in(hub_email)
        page = hub.page
        page.goto("/broker/search")
        page.select_option("#f-index", "projects")
        page.fill("#f-q", f"{word} 需要")
        page.click("form[role=search] button[type=submit]")
        page.wait_for_selector(".results")
        results = page.locator(".results")
        assert "1件" in results.locator("h2").inner_text()
        assert results.locator(".card h3 a mark").first.inner_text() == word
        assert results.locator(".card h3 a").get_attribute("href") == f"/hub/projects/{created.json()['id']}"
        hub.check("hub-project-search")
        page.fill("#f-q", "該当しない語" + uuid.uuid4().hex[:4])
        page.click("form[role=search] button[type=submit]")
        page.wait_for_selector(".results")
        assert "見つかりませんでした" in page.locator(".results").inner_text()
    finally:
        broker.close()
        hub.close()
