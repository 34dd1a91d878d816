"""/admin/access and a user's page in headless Chromium (Playwright driving /usr/bin/chromium),
over the synced fixture marketplaces and a registered table: tick a plugin for a group (only the
row swaps), see a system plugin locked, explain why a user cannot download a table, deactivate
them, and their token gets 401 on /marketplace.zip at once."""

from __future__ import annotations

import pytest
import requests

from tests.access.conftest import register_tables
from tests.conftest import CSP_RECORDER, TIMEOUT_MS, BrowserLog

pytestmark = [pytest.mark.browser, pytest.mark.synced_marketplaces]


def test_admin_grants_explains_and_deactivates(live_server, browser, auth, client) -> None:  # type: ignore[no-untyped-def]
    from agnes import people

    finance = people.create_group("Finance", actor_id=None)
    sales = people.create_group("Sales", actor_id=None)
    register_tables(["orders"])
    people.create_grant(sales.id, "table", "orders", actor_id=None)
    cy = auth.user("cy@example.com", name="Cy")
    cy_token = auth.token("cy@example.com")
    assert (
        requests.get(
            f"{live_server.url}/marketplace.zip", headers={"Authorization": f"Bearer {cy_token}"}, timeout=30
        ).status_code
        == 200
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

    # Tick a plugin for Finance: only its row is swapped, the page is not reloaded.
    page.goto(f"/admin/access?group={finance.id}")
    page.evaluate("window.__noReload = 'marker'")
    row = page.locator('[id="marketplace_plugin:wshobson/ui-design"]')
    assert not row.locator("input[type=checkbox]").is_checked()
    row.locator("input[type=checkbox]").check()
    page.locator('[id="marketplace_plugin:wshobson/ui-design"].granted').wait_for()
    assert page.evaluate("window.__noReload") == "marker", "the page reloaded instead of swapping the row"
    assert people.find_grant(finance.id, "marketplace_plugin", "wshobson/ui-design") is not None
    # The system plugin is locked.
    system = page.locator('[id="marketplace_plugin:team/org-baseline"]')
    assert system.locator("input[type=checkbox]").is_checked() and system.locator("input[type=checkbox]").is_disabled()
    assert system.locator(".pill-system").inner_text() == "SYSTEM"
    log.assert_clean(page)

    # Explain why Cy cannot download orders, on Cy's page.
    page.goto(f"/admin/users/{cy}")
    page.select_option("#explain-type", "table")
    page.fill("#explain-id", "orders")
    page.click("#explain-form button[type=submit]")
    summary = page.locator("#explain-summary")
    summary.wait_for()
    assert summary.inner_text() == "Cy cannot download orders: it is granted only to Sales; they are not in it."

    # Deactivate Cy (with a confirmation); Cy's token is refused at once.
    page.click("#user-status-button")
    page.click("#user-status-confirm")
    page.locator('#user-status[data-active="false"]').wait_for()
    refused = requests.get(
        f"{live_server.url}/marketplace.zip", headers={"Authorization": f"Bearer {cy_token}"}, timeout=30
    )
    assert refused.status_code == 401 and refused.json()["error"] == "authentication_required"
    log.assert_clean(page)
    context.close()
