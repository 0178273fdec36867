"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (no browser download), accounts
with known e-mail addresses to sign in with, and the screens' checks every page passes (axe-core without
serious or critical violations, no horizontal scrolling at 390 px, a screenshot at 1280 and 390 px saved
under the artifacts directory, printed at the end: $TSUNAGU_ARTIFACTS or tests/artifacts/screenshots)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, Api

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("TSUNAGU_ARTIFACTS") or Path(__file__).parents[1] / "artifacts") / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread while it
# is open, and every later test that calls asyncio.run() (the kernel's NATS tests...) would fail.
@pytest.fixture(scope="module")
def chromium_browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root; CI does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ARTIFACTS
    print(f"\nscreenshots of the screens: {ARTIFACTS}")


def make_account(api: Api, role: str, name: str, prefectures: list[str] | None = None) -> str:
    """An account of any role (brokers and hub staff included); returns its e-mail (password: PASSWORD)."""
    from gateway.service import ensure_user
    from tsunagu.db import make_engine, session_scope

    email = f"{role}-{uuid.uuid4().hex[:10]}@example.jp"
    engine = make_engine(api.system.database_url("gateway"))
    with session_scope(engine) as session:
        ensure_user(session, email=email, password=PASSWORD, display_name=name, role=role, prefectures=prefectures)
    engine.dispose()
    return email


class Screens:
    """One person's browser (its own context: cookies) on the system, with the checks of every page."""

    def __init__(self, browser, base_url: str, artifacts: Path) -> None:
        self.context = browser.new_context(locale="ja-JP", viewport=DESKTOP, base_url=base_url)
        self.page = self.context.new_page()
        self.artifacts = artifacts

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.page.goto("/login")
        self.page.fill("#f-email", email)
        self.page.fill("#f-password", password)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_load_state()
        assert "ログインしました" in self.page.locator(".flash").inner_text()

    def check(self, name: str) -> None:
        """The page as it is now: accessible (axe-core), no horizontal scroll at 390 px, screenshots at both widths."""
        from axe_playwright_python.sync_playwright import Axe

        page = self.page
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.wait_for_timeout(50)
            page.screenshot(path=str(self.artifacts / f"{name}-{label}.png"), full_page=True)
            if label == "phone":
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"{name}: {overflow}px of horizontal scrolling at 390 px"
        page.set_viewport_size(DESKTOP)
        results = Axe().run(page, options={"resultTypes": ["violations"]})
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"]
            if v.get("impact") in ("serious", "critical")
        ]
        assert not serious, f"{name}: accessibility violations: {serious}"

    def close(self) -> None:
        self.context.close()
