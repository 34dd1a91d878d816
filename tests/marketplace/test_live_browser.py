"""Pages are live after a job (issue 15 item 1), in headless Chromium against a live server.

"Sync now" on a never-synced marketplace: with no reload the plugin table fills in, "Last sync"
changes and the job widget states the result in words. A sync that fails shows its error in place,
and so does a failed Retry. Before the fix the widget said "Done" while the rest of the page kept
"Last sync never" and "Plugins (0)" until a manual reload.
"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import ARTIFACTS, CSP_RECORDER, TIMEOUT_MS, BrowserLog, bearer, session_cookie
from tests.marketplace.conftest import register, small_marketplace

pytestmark = pytest.mark.browser


def admin_page(app, live_server, browser, auth):  # type: ignore[no-untyped-def]
    """A signed-in admin's page (session cookie) with console, CSP and response checks attached."""
    user_id = auth.user("admin@example.com", admin=True)
    cookie = app.session_interface.get_signing_serializer(app).dumps(session_cookie(user_id))
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_RECORDER)
    context.add_cookies([{"name": "agnes_session", "value": cookie, "url": live_server.url}])
    page = context.new_page()
    log = BrowserLog()
    log.attach(page)
    return page, log


def test_sync_now_fills_the_page_and_a_failed_retry_shows_its_error(app, client, live_server, browser, auth, tmp_path):  # type: ignore[no-untyped-def]
    repo = small_marketplace(tmp_path / "repo", ("alpha", "beta", "gamma"))
    register(client, bearer(auth.token("admin@example.com", admin=True)), "acme", repo)  # not synced
    page, log = admin_page(app, live_server, browser, auth)
    page.goto("/admin/marketplaces/acme")
    assert page.locator("#marketplace-plugins h2").inner_text() == "Plugins (0)"
    assert page.locator("#marketplace-last-sync").inner_text() == "never"
    page.evaluate("window.__noReload = 'marker'")

    # 1. Sync now: the widget, then the plugin table, the last sync and the result, in place.
    page.click("#sync-button")
    page.locator("#plugin-gamma").wait_for()
    assert page.evaluate("window.__noReload") == "marker", "the page reloaded"
    assert page.locator("#marketplace-plugins h2").inner_text() == "Plugins (3)"
    assert page.locator("#marketplace-last-sync").inner_text().startswith("just now")
    assert page.locator("#marketplace-last-result").inner_text() == "3 plugins: 3 added"
    assert page.locator("#sync-status .job-summary").inner_text() == "3 plugins: 3 added"
    assert page.locator("#sync-history tbody tr").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "marketplace-live-after-sync.png"), full_page=True)
    log.assert_clean(page)

    # 2. The repository goes away: the failure shows in the widget and at "Last error", in place.
    shutil.move(repo, tmp_path / "moved")
    page.click("#sync-button")
    page.locator('#sync-status .job-status[data-state="failed"]').wait_for()
    page.locator("#marketplace-error").wait_for()
    first_error = page.locator("#marketplace-error").inner_text()
    assert "not found" in first_error or "does not exist" in first_error, first_error
    page.locator("#sync-history tbody tr.history-failed").first.wait_for()
    assert page.locator("#marketplace-plugins h2").inner_text() == "Plugins (3)"  # the previous state stays

    # 3. Retry fails again: its error replaces the widget's in place, the history gains a row.
    page.click("#sync-status button:has-text('Retry')")
    page.locator("#sync-history tbody tr.history-failed").nth(1).wait_for()
    page.locator('#sync-status .job-status[data-state="failed"] .job-error').wait_for()
    assert page.locator("#marketplace-error").is_visible()
    assert page.evaluate("window.__noReload") == "marker", "the page reloaded"
    page.screenshot(path=str(ARTIFACTS / "marketplace-live-after-failed-retry.png"), full_page=True)
    log.assert_clean(page)
