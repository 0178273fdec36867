"""The Japanese web UI in a real headless Chromium (Debian's package), driven by Playwright."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import Api
from tests.e2e.helpers import create_expert, unique_name, wait_searchable

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root; CI does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield instance
        instance.close()


def test_search_from_the_home_page(browser, api: Api, admin: dict[str, str], tmp_path) -> None:  # noqa: ANN001
    name = unique_name()
    profile = create_expert(
        api, admin, name=name, prefectures=["26"], strengths=[{"topic": "supply_chain", "depth": 3}], bio="京都の製造業を中心に取引先管理を支援"
    )
    wait_searchable(api, name, profile["id"])

    page = browser.new_page(locale="ja-JP")
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

    page.fill("input[name=q]", "該当者のいない検索語xyz")
    page.click("button[type=submit]")
    page.wait_for_selector(".results")
    assert "見つかりませんでした" in page.locator(".results").inner_text()
    page.close()
