"""The Japanese web UI in a real headless Chromium (Debian's package), driven by Playwright (one browser for
the session: ``chromium_browser`` in conftest.py; two sync Playwright instances cannot share the thread)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import Api
from tests.e2e.helpers import create_expert, wait_searchable
from tests.factories import unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_search_from_the_home_page(chromium_browser, api: Api, admin: dict[str, str], tmp_path) -> None:
    name = unique_name()
    profile = create_expert(
        api,
        admin,
        name=name,
        prefectures=["26"],
        strengths=[{"topic": "supply_chain", "depth": 3}],
        bio="京都の製造業を中心に取引先管理を支援",
    )
    wait_searchable(api, name, profile["id"])

    page = chromium_browser.new_page(locale="ja-JP")
    page.goto(api.system.url("gateway") + "/")
    assert page.locator("h1").inner_text().startswith("セキュリティとDXの相談相手")
    page.fill("input[name=q]", name)
    page.select_option("select[name=prefecture]", "26")
    page.click("button[type=submit]")
    page.wait_for_selector(".card")
    cards = page.locator(".card")
    assert cards.count() == 1
    card = cards.first.inner_text()
    assert name in card and "京都府" in card and "サプライチェーン・取引先のセキュリティ管理" in card
    assert "1件" in page.locator(".count").inner_text()
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)

    # The search swaps the results in place (htmx) and puts the query in the address bar.
    page.fill("input[name=q]", "該当者のいない検索語xyz")
    page.click("button[type=submit]")
    expect(page.locator(".results")).to_contain_text("見つかりませんでした")
    assert "q=" in page.url
    page.close()
