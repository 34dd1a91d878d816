"""Real pages in headless Chromium (Playwright driving Debian's /usr/bin/chromium).

The seed admin signs in with an emailed link, creates a group, adds a member through the
HTMX form (no full page reload) and starts a job whose status fragment polls until Done.
No console errors and no Content-Security-Policy violations are allowed on the way.
Playwright never downloads a browser here: ``executable_path`` points at the system one.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import ARTIFACTS, CSP_RECORDER, TIMEOUT_MS, BrowserLog

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.com"
MEMBER_EMAIL = "analyst@example.com"


@pytest.fixture
def sign_in_links(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Sign-in links the server would have emailed: ``[(address, link)]``."""
    from agnes.auth import email

    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(email, "deliver_sign_in_link", lambda address, link: sent.append((address, link)))
    return sent


def test_admin_signs_in_and_adds_a_member_with_htmx(live_server, browser, sign_in_links, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes.models import groups
    from agnes.state import state_store

    auth.user(MEMBER_EMAIL, name="Ana Lyst")
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_RECORDER)
    page = context.new_page()
    log = BrowserLog()
    log.attach(page)

    # 1. Ask for a link on /login, open it, confirm.
    page.goto("/login")
    page.fill("#email-login input[name=email]", ADMIN_EMAIL)
    page.click("#email-login button[type=submit]")
    page.wait_for_url("**/login/sent")
    assert [address for address, _ in sign_in_links] == [ADMIN_EMAIL]
    link = sign_in_links[0][1]
    assert link.startswith(live_server.url + "/auth/link/")
    page.goto(link)
    page.click("#confirm-button")
    page.wait_for_url(live_server.url + "/")
    assert page.locator("#admin-nav").is_visible()
    log.assert_clean(page)

    # 2. Create a group on /admin/groups; the HTMX form redirects to the new group's page.
    page.click("#admin-nav >> text=Groups")
    page.wait_for_url("**/admin/groups")
    page.fill("#group-create input[name=name]", "Finance analysts")
    page.fill("#group-create input[name=description]", "People who read the ledger")
    page.click("#group-create button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/groups/[0-9a-f]+$"))
    group_id = page.locator("#group-page").get_attribute("data-group-id")
    assert page.locator("h1").inner_text().startswith("Finance analysts")
    log.assert_clean(page)

    # 3. Add a member through the HTMX form: the row appears, the document is never reloaded.
    page.evaluate("window.__noReload = 'marker'")
    assert page.locator("#member-count").inner_text() == "0"
    page.fill("#member-add input[name=email]", MEMBER_EMAIL)
    page.click("#member-add button[type=submit]")
    row = page.locator(f'#member-table tr[data-email="{MEMBER_EMAIL}"]')
    row.wait_for()
    assert page.evaluate("window.__noReload") == "marker", "the page reloaded instead of swapping the fragment"
    assert page.locator("#member-count").inner_text() == "1"
    assert "Ana Lyst" in row.inner_text()
    assert page.locator("#member-add input[name=email]").input_value() == ""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-group-member-added.png"), full_page=True)
    log.assert_clean(page)
    with state_store().read() as con:
        assert [m.email for m in groups.list_members(con, group_id)] == [MEMBER_EMAIL]

    # 4. The job-status fragment: start the recount, wait for Done, then polling stops.
    page.click("#group-page nav.breadcrumb a")
    page.wait_for_url("**/admin/groups")
    page.evaluate("window.__noReload = 'marker'")
    page.click("#recount-button")
    status = page.locator("#recount-status .job-status")
    page.locator('#recount-status .job-status[data-state="finished"]').wait_for()
    assert page.evaluate("window.__noReload") == "marker"
    assert status.locator(".state").inner_text().startswith("Done")
    assert status.get_attribute("hx-get") is None and status.get_attribute("hx-trigger") is None
    finished_at = time.monotonic()
    page.wait_for_timeout(2_500)  # more than two polling intervals (1 s)
    polls_after = [url for at, url in log.requests if at > finished_at and "/jobs/" in url]
    assert polls_after == [], f"the finished fragment kept polling: {polls_after}"
    page.screenshot(path=str(ARTIFACTS / "browser-recount-done.png"), full_page=True)
    log.assert_clean(page)
    with state_store().read() as con:
        counted = {g.id: g.counted_member_count for g in groups.list_groups(con)}
    assert counted[group_id] == 1

    # 5. Delete the group from its page (htmx post behind a confirm dialog): back on the list.
    page.goto(f"/admin/groups/{group_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#group-delete button[type=submit]")
    page.wait_for_url("**/admin/groups")
    assert page.locator("#group-page").count() == 0
    assert page.locator(f'a[href="/admin/groups/{group_id}"]').count() == 0
    log.assert_clean(page)
    context.close()
