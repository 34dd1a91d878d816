"""Data on the web in headless Chromium (issue 15 items 1 and 6): an admin clicks "Sync now" on the
page of a never-synced table at ``/data/<id>`` and, with no reload, sees the rows, last sync, schema,
first rows and the job's result sentence; an analyst searches ``/data`` as they type.
"""

from __future__ import annotations

import pytest

from tests.conftest import ARTIFACTS, CSP_RECORDER, TIMEOUT_MS, BrowserLog, session_cookie
from tests.data.conftest import penguins_fields, register

pytestmark = pytest.mark.browser


def _page(app, live_server, browser, user_id):  # type: ignore[no-untyped-def]
    cookie = app.session_interface.get_signing_serializer(app).dumps(session_cookie(user_id))
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_RECORDER)
    context.add_cookies([{"name": "agnes_session", "value": cookie, "url": live_server.url}])
    page = context.new_page()
    log = BrowserLog()
    log.attach(page)
    return page, log


def test_sync_now_on_data_fills_the_table_page(app, live_server, browser, auth, folder):  # type: ignore[no-untyped-def]
    from agnes import people

    register(penguins_fields(folder))  # registered, never synced
    admin = auth.user("admin@example.com", admin=True)
    page, log = _page(app, live_server, browser, admin)
    page.goto("/data/penguins")
    assert page.locator("#data-rows").inner_text() == "—"
    assert "never synced" in page.locator("#data-last-sync").inner_text()
    page.evaluate("window.__noReload = 'marker'")

    page.click("#data-sync-now")
    page.locator("#data-schema tbody tr").first.wait_for()
    assert page.evaluate("window.__noReload") == "marker", "the page reloaded"
    assert page.locator("#data-rows").inner_text() == "344"
    assert page.locator("#data-last-sync").inner_text().startswith("ok")
    assert page.locator("#data-preview tbody tr").count() == 50
    summary = page.locator("#data-sync-status .job-summary").inner_text()
    assert summary.startswith("penguins: 344 rows, ") and summary.endswith("KiB")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "data-table-after-sync.png"), full_page=True)
    log.assert_clean(page)

    # An analyst searches /data as they type: the list narrows without a reload.
    analyst = auth.user("analyst@example.com")
    people.create_grant("everyone", "table", "penguins", actor_id=admin)
    (folder / "weather.csv").write_text("day,rain\n1,0.5\n")
    register(
        {
            "name": "weather",
            "description": "Daily rain",
            "source_type": "csv",
            "source_spec": {"location": str(folder / "weather.csv")},
        }
    )
    people.create_grant("everyone", "table", "weather", actor_id=admin)
    page, log = _page(app, live_server, browser, analyst)
    page.goto("/")
    page.click("#nav-data")
    page.wait_for_url("**/data")
    assert page.locator("#data-table tbody tr[data-table]").count() == 2
    page.evaluate("window.__noReload = 'marker'")
    page.locator("#data-q").press_sequentially("rain", delay=30)
    page.wait_for_url("**/data?q=rain")
    page.locator("#data-count:has-text('1 of 2 tables')").wait_for()
    assert page.locator("#data-table tbody tr[data-table]").count() == 1
    assert page.evaluate("window.__noReload") == "marker"
    log.assert_clean(page)
