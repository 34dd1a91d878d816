"""Telemetry in headless Chromium: Most Popular and its hiding on search, a plugin page's chip and
sparkline, an admin's view of a user's sessions with the ZIP download, and a reprocess whose
progress advances to the end. No console errors, no CSP violations."""

from __future__ import annotations

import time
import zipfile

import pytest

from tests.conftest import ARTIFACTS, CSP_RECORDER, TIMEOUT_MS, BrowserLog, session_cookie
from tests.telemetry.test_pages import used  # noqa: F401 - fixture

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = [pytest.mark.browser]


def _page(app, browser, live_server, user_id: str):  # type: ignore[no-untyped-def]
    cookie = app.session_interface.get_signing_serializer(app).dumps(session_cookie(user_id))
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1100, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_RECORDER)
    context.add_cookies([{"name": "agnes_session", "value": cookie, "url": live_server.url}])
    page = context.new_page()
    log = BrowserLog()
    log.attach(page)
    return page, log


def test_usage_in_the_browser(app, live_server, browser, auth, used, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    slug = used["slug"]
    page, log = _page(app, browser, live_server, used["analyst@example.com"])

    # Most Popular: the two used plugins, gone while searching.
    page.goto("/marketplace")
    popular = page.locator("#most-popular li")
    expect(popular).to_have_count(2)
    assert popular.evaluate_all("els => els.map(e => e.dataset.plugin)") == [f"{slug}/handgemacht", f"{slug}/elixir"]
    page.screenshot(path=str(ARTIFACTS / "telemetry-most-popular.png"), full_page=True)
    page.locator("#mp-q").press_sequentially("elixir", delay=30)
    page.wait_for_url("**/marketplace?q=elixir")
    expect(page.locator("#most-popular")).to_have_count(0)
    log.assert_clean(page)

    # A plugin page: chip and sparkline.
    page.goto(f"/marketplace/curated/{slug}/handgemacht")
    expect(page.locator("#usage-chip")).to_contain_text("2 active · 4 calls")
    expect(page.locator("#usage-sparkline svg polyline")).to_have_count(1)
    log.assert_clean(page)
    page.context.close()

    # An admin: the user's sessions and the ZIP of them all.
    admin, log = _page(app, browser, live_server, auth.user("admin@example.com", admin=True))
    admin.goto(f"/admin/users/{used['analyst@example.com']}")
    expect(admin.locator("#sessions-table tr[data-session]")).to_have_count(4)
    with admin.expect_download() as info:
        admin.click("#sessions-zip")
    target = tmp_path / "sessions.zip"
    info.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        assert len(archive.namelist()) == 4 and archive.testzip() is None
    log.assert_clean(admin)

    # Reprocess: progress advances, then it finishes (each file takes a moment here).
    from agnes.telemetry import processor

    real_parse = processor.parse

    def slow_parse(data: bytes):  # type: ignore[no-untyped-def]
        time.sleep(0.4)
        return real_parse(data)

    monkeypatch.setattr(processor, "parse", slow_parse)
    admin.goto("/admin/usage")
    admin.click("#reprocess-button")
    status = admin.locator("#reprocess .job-status")
    expect(status).to_contain_text("of 8 files", timeout=TIMEOUT_MS)
    first = status.inner_text()
    expect(status).to_have_attribute("data-state", "finished", timeout=30_000)
    assert first != status.inner_text()
    admin.screenshot(path=str(ARTIFACTS / "telemetry-reprocess.png"), full_page=True)
    log.assert_clean(admin)
