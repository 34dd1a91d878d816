"""The marketplace pages in headless Chromium, against a live server with fixture marketplaces synced.

An analyst searches as they type (the grid narrows without a reload and the URL follows), opens a
plugin, adds it to their stack (the panel swaps in place, nothing below it moves, the Claude Code
refresh hint appears), sees it in My stack, removes it, and opens a skill page. No console errors
and no CSP violations on the way. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import pytest

from tests.conftest import ARTIFACTS, CSP_RECORDER, TIMEOUT_MS, BrowserLog, session_cookie
from tests.marketplace.conftest import SYSTEM

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = [pytest.mark.browser, pytest.mark.synced_marketplaces]

ANALYST = "ana@example.com"


def _box(page, selector: str) -> tuple[float, float, float, float]:  # type: ignore[no-untyped-def]
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return (round(box["x"]), round(box["y"]), round(box["width"]), round(box["height"]))


def test_browse_search_add_remove_and_open_a_skill(app, live_server, browser, auth) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    user_id = auth.user(ANALYST, name="Ana Lyst")
    cookie = app.session_interface.get_signing_serializer(app).dumps(session_cookie(user_id))
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1100, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_RECORDER)
    context.add_cookies([{"name": "agnes_session", "value": cookie, "url": live_server.url}])
    page = context.new_page()
    log = BrowserLog()
    log.attach(page)
    ARTIFACTS.mkdir(exist_ok=True)

    # 1. The listing: granted plugins and the required one, from the nav link.
    page.goto("/")
    page.click("#nav-marketplace")
    page.wait_for_url("**/marketplace")
    cards = page.locator("#plugin-grid article.mp-card")
    assert cards.count() == 8
    assert page.locator(f'article[data-plugin="{SYSTEM}"] .badge-required').is_visible()
    page.screenshot(path=str(ARTIFACTS / "marketplace-listing.png"), full_page=True)
    log.assert_clean(page)

    # 2. Search as you type: the grid narrows by swapping the fragment; the URL keeps the query.
    page.evaluate("window.__noReload = 'marker'")
    page.locator("#mp-q").press_sequentially("python", delay=30)
    page.wait_for_url("**/marketplace?q=python")
    page.wait_for_function("document.querySelectorAll('#plugin-grid article.mp-card').length === 2")
    assert page.evaluate("window.__noReload") == "marker", "the page reloaded instead of swapping the results"
    assert sorted(cards.evaluate_all("els => els.map(e => e.dataset.plugin)")) == [
        "team/python-development",
        "wshobson/python-development",
    ]
    assert page.locator("#mp-q").evaluate("el => el === document.activeElement"), "the search box lost focus"
    page.click("#category-pills a[data-category='languages']")
    page.wait_for_url("**/marketplace?q=python&category=languages")
    assert page.evaluate("window.__noReload") == "marker"
    log.assert_clean(page)

    # 3. A plugin page, by clicking its card.
    page.click('article[data-plugin="wshobson/python-development"] h3 a')
    page.wait_for_url("**/marketplace/curated/wshobson/python-development")
    assert page.locator("#plugin-hero h1").inner_text() == "python-development"
    assert page.locator("#plugin-install").get_attribute("data-state") == "available"
    page.screenshot(path=str(ARTIFACTS / "marketplace-plugin-detail.png"), full_page=True)
    log.assert_clean(page)

    # 4. Add to my stack: the panel swaps in place, the hint appears, nothing moves.
    page.evaluate("window.__noReload = 'marker'")
    before = (_box(page, "#plugin-install"), _box(page, "#refresh-hint"), _box(page, ".section-nav"))
    page.click("#install-button")
    page.locator('#plugin-install[data-state="in_stack"]').wait_for()
    assert page.evaluate("window.__noReload") == "marker"
    # htmx settles swapped elements (old class first, new one ~20 ms later): assert with retries.
    expect(page.locator("#install-state")).to_have_text("In your stack")
    # The exact commands for Claude Code, in a block one click selects whole (issue 15).
    expect(page.locator("#claude-commands")).to_have_text(
        "claude plugin marketplace update agnes\nclaude plugin install python-development@agnes"
    )
    assert page.locator("#claude-commands").evaluate("el => getComputedStyle(el).userSelect") == "all"
    expect(page.locator("#refresh-hint")).to_be_visible()
    after = (_box(page, "#plugin-install"), _box(page, "#refresh-hint"), _box(page, ".section-nav"))
    assert after == before, f"layout shifted: {before} -> {after}"
    page.screenshot(path=str(ARTIFACTS / "marketplace-plugin-added.png"))
    log.assert_clean(page)

    # 5. My stack shows it with the "In your stack" badge.
    page.goto("/marketplace?tab=my")
    mine = page.locator('article[data-plugin="wshobson/python-development"]')
    assert mine.locator(".badge-stack").inner_text().strip() == "In your stack"
    log.assert_clean(page)

    # 6. Remove it again from its page.
    mine.locator("h3 a").click()
    page.wait_for_url("**/marketplace/curated/wshobson/python-development")
    page.click("#install-button")
    page.locator('#plugin-install[data-state="available"]').wait_for()
    expect(page.locator("#refresh-hint")).to_contain_text("Removed")
    expect(page.locator("#claude-commands")).to_contain_text("claude plugin uninstall python-development@agnes")
    page.goto("/marketplace?tab=my")
    assert page.locator('article[data-plugin="wshobson/python-development"]').count() == 0
    log.assert_clean(page)

    # 7. A skill page, from the plugin page.
    page.goto("/marketplace/curated/wshobson/python-development")
    first_skill = page.locator("#skills a[data-item]").first
    skill_name = first_skill.locator("strong").inner_text()
    first_skill.click()
    page.wait_for_url("**/marketplace/curated/wshobson/python-development/skill/**")
    assert page.locator("#item-hero h1").inner_text() == skill_name
    assert page.locator("#body .prose").is_visible()
    assert page.locator("#open-parent").get_attribute("href") == "/marketplace/curated/wshobson/python-development"
    page.screenshot(path=str(ARTIFACTS / "marketplace-skill.png"))
    log.assert_clean(page)

    # 8. On a phone-sized screen the listing still fits (no horizontal scrolling).
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/marketplace")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(ARTIFACTS / "marketplace-listing-phone.png"))
    log.assert_clean(page)
    context.close()
