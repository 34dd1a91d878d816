"""/admin/activity in headless Chromium (Playwright driving /usr/bin/chromium): filter the
timeline, load more rows in place, open a row's drawer; filter the Changes tab."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agnes.models import utcnow
from tests.activity.conftest import seed_audit
from tests.conftest import CSP_RECORDER, TIMEOUT_MS, BrowserLog

pytestmark = [pytest.mark.browser]


def test_filter_load_more_and_open_a_drawer(live_server, browser, auth, client) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    for n in range(60):
        seed_audit(now - timedelta(minutes=n + 1), "table.sync", resource=f"table:t{n}", params={"n": n})
    seed_audit(
        now - timedelta(seconds=40),
        "group.update",
        resource="group:g1",
        params={"name": "Finance EU"},
        params_before={"name": "Finance"},
    )
    seed_audit(
        now - timedelta(seconds=30),
        "query.remote",
        params={"sql": "SELECT * FROM orders WHERE email = 'ana@example.com'"},
        correlation_id="op-1",
    )
    auth.login("admin@example.com", admin=True)
    cookie = client.get_cookie("agnes_session")
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_RECORDER)
    context.add_cookies([{"name": "agnes_session", "value": cookie.value, "url": live_server.url}])
    page = context.new_page()
    log = BrowserLog()
    log.attach(page)

    page.goto("/admin/activity")
    assert page.locator("#activity-health .health-field").count() >= 6
    page.fill("#f-action", "table.")
    page.click("#timeline-filters button[type=submit]")
    page.wait_for_url("**/admin/activity?*action=table.*")
    rows = page.locator(".timeline-row")
    assert rows.count() == 50
    assert set(rows.evaluate_all("els => els.map(e => e.dataset.action)")) == {"table.sync"}

    page.evaluate("window.__noReload = 'marker'")
    page.click("#timeline-more")
    page.locator(".timeline-row").nth(59).wait_for()
    assert page.locator(".timeline-row").count() == 60
    assert page.evaluate("window.__noReload") == "marker", "Load more reloaded the page"
    assert page.locator("#timeline-more").count() == 0

    page.goto("/admin/activity?q=orders")
    row = page.locator('.timeline-row[data-action="query.remote"]')
    assert not row.locator("pre.params").is_visible()
    row.locator("summary").click()
    params = row.locator("pre.params")
    params.wait_for(state="visible")
    assert "email = ?" in params.inner_text() and "ana@example.com" not in params.inner_text()
    row.locator(".operation-link").click()
    page.wait_for_url("**correlation_id=op-1**")
    assert page.locator(".timeline-row").count() == 1

    page.click('#activity-tabs a:text("Changes")')
    page.wait_for_url("**/admin/activity/changes")
    page.select_option("#f-type", "group")
    page.click("#changes-filters button[type=submit]")
    page.wait_for_url("**/admin/activity/changes?*type=group*")
    change = page.locator('.change-row[data-action="group.update"] tr[data-field="name"]')
    assert change.locator(".before").inner_text() == "Finance" and change.locator(".after").inner_text() == "Finance EU"
    log.assert_clean(page)
    context.close()
