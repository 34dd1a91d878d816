"""The flea market in headless Chromium (Debian's /usr/bin/chromium through Playwright).

An analyst uploads a SKILL.md through the upload form and watches "Under review" turn into
"Approved" on the entry's page without a reload, while an administrator approves it from the
review queue in another browser; then the analyst uploads version 2, the administrator rejects it
with a reason, and the analyst's page shows the reason, again without a reload. No console
errors, failed responses or CSP violations on the way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.conftest import ARTIFACTS, CSP_RECORDER, TIMEOUT_MS, BrowserLog, LiveServer, session_cookie
from tests.flea.conftest import People, skill_md

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(flea_app: Flask) -> Iterator[LiveServer]:
    live = LiveServer(flea_app)
    flea_app.config["AGNES_BASE_URL"] = live.url
    yield live
    live.stop()


def _page(browser: Any, app: Flask, server: LiveServer, user_id: str) -> tuple[Any, BrowserLog]:
    cookie = app.session_interface.get_signing_serializer(app).dumps(session_cookie(user_id))  # type: ignore[attr-defined]
    context = browser.new_context(base_url=server.url, viewport={"width": 1100, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_RECORDER)
    context.add_cookies([{"name": "agnes_session", "value": cookie, "url": server.url}])
    page = context.new_page()
    log = BrowserLog()
    log.attach(page)
    return page, log


def _open_newest_in_queue(admin: Any, name: str) -> None:
    admin.goto(f"/admin/flea?q={name}")
    admin.locator("#queue-table tr[data-status=in_review] a").first.click()
    admin.wait_for_url(re.compile(r".*/marketplace/flea/[0-9a-f]+/versions/\d+$"))


def test_upload_watch_approval_then_a_rejection_reason_without_reload(  # type: ignore[no-untyped-def]
    flea_app: Flask, folks: People, server: LiveServer, browser
) -> None:
    owner, owner_log = _page(browser, flea_app, server, folks.owner_id)
    admin, admin_log = _page(browser, flea_app, server, folks.admin_id)
    ARTIFACTS.mkdir(exist_ok=True)

    # 1. The analyst uploads a SKILL.md from the flea tab's "+ Upload".
    owner.goto("/marketplace?tab=flea")
    owner.click("#flea-upload-link")
    owner.wait_for_url("**/marketplace/flea/new")
    owner.fill("#f-name", "churn-notes")
    owner.select_option("#f-category", "Data & Analytics")
    owner.set_input_files("#f-file", {"name": "SKILL.md", "mimeType": "text/markdown", "buffer": skill_md("churn")})
    owner.click("#publish-button")
    owner.wait_for_url(re.compile(r".*/marketplace/flea/[0-9a-f]{16}$"))
    expect(owner.locator("#flea-status-label")).to_have_text("Under review")
    owner.screenshot(path=str(ARTIFACTS / "flea-under-review.png"), full_page=True)
    owner.evaluate("window.__noReload = 'marker'")

    # 2. An administrator approves it from the queue; the analyst's page follows by itself.
    _open_newest_in_queue(admin, "churn-notes")
    admin.click("#approve-button")
    expect(admin.locator("#version-status")).to_have_text("Approved")
    expect(owner.locator("#flea-status-label")).to_have_text("Approved")
    # The poll that saw the decision refreshed the install panel and the versions, still without a reload.
    expect(owner.locator("#plugin-install")).to_have_attribute("data-state", "available")
    expect(owner.locator("#version-table tr[data-version='1'] .status")).to_have_text("Approved")
    assert owner.evaluate("window.__noReload") == "marker", "the page reloaded instead of polling its fragment"

    # 3. Version 2: the administrator rejects it with a reason, which the analyst then sees.
    owner.set_input_files("#f-version-file", {"name": "SKILL.md", "mimeType": "text/markdown",
                                              "buffer": skill_md("churn", "\nNow with cohorts.\n")})  # fmt: skip
    owner.click("#new-version-form button[type=submit]")
    expect(owner.locator("#flea-status-label")).to_have_text("Under review")
    owner.evaluate("window.__noReload = 'marker'")
    _open_newest_in_queue(admin, "churn-notes")
    assert admin.locator("#diff details[data-path='skills/churn-notes/SKILL.md']").count() == 1
    reason = "It reads the cohorts table, which holds personal data; use the aggregated view."
    admin.fill("#f-reason", reason)
    admin.click("#reject-button")
    expect(admin.locator("#version-reason")).to_contain_text(reason)
    expect(owner.locator("#flea-status-reason")).to_contain_text(reason)
    assert owner.evaluate("window.__noReload") == "marker"
    owner.screenshot(path=str(ARTIFACTS / "flea-rejected.png"), full_page=True)
    owner_log.assert_clean(owner)
    admin_log.assert_clean(admin)
