"""/admin/feedback in headless Chromium (Playwright driving /usr/bin/chromium): open a report,
assign it to me, try to resolve without a text (refused in place), resolve it."""

from __future__ import annotations

import pytest

from agnes import feedback
from tests.conftest import CSP_RECORDER, TIMEOUT_MS, BrowserLog

pytestmark = [pytest.mark.browser]


def test_triage_a_report_to_resolved(live_server, browser, auth, client) -> None:  # type: ignore[no-untyped-def]
    report = feedback.create_report(
        auth.user("ana@example.com"),
        message="The orders table is empty",
        excerpt=[{"role": "user", "text": "agnes pull"}, {"role": "tool", "text": "0 rows", "is_error": True}],
        environment={"agnes": "0.1.0", "os": "Linux"},
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

    page.goto("/admin/feedback")
    page.click(f'#feedback-reports tr[data-id="{report.id}"] a')
    page.wait_for_url(f"**/admin/feedback/{report.id}")
    assert page.locator("#feedback-excerpt .turn-error pre").inner_text() == "0 rows"
    page.evaluate("window.__noReload = 'marker'")
    page.click("#assign-me")
    page.locator('#feedback-triage[data-status="triaged"]').wait_for()
    assert page.locator("#feedback-assignee-name").inner_text() == "admin@example.com"
    page.click("#resolve-button")
    page.locator("#resolution-error").wait_for()
    assert feedback.get_report(report.id).status == "triaged"
    assert [r.split()[0] for r in log.bad_responses] == ["422"]  # the refusal, shown in place
    log.bad_responses.clear()
    assert len(log.console_errors) == 1 and "422" in log.console_errors[0]  # Chromium logs every 4xx
    log.console_errors.clear()
    page.fill("#feedback-resolution-text", "Re-synced the table")
    page.click("#resolve-button")
    page.locator('#feedback-triage[data-status="resolved"]').wait_for()
    assert page.locator("#feedback-resolution").inner_text() == "Re-synced the table"
    assert page.evaluate("window.__noReload") == "marker", "triage reloaded the page"
    assert feedback.get_report(report.id).status == "resolved"
    log.assert_clean(page)
    context.close()
