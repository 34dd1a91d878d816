"""The analysts' marketplace pages and their JSON twins, over really synced fixture marketplaces."""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from agnes.pages.marketplace_plugin import REFRESH_COMMAND
from tests.conftest import bearer, csrf_token
from tests.marketplace.conftest import GRANTED, NOT_GRANTED, SYSTEM

pytestmark = pytest.mark.synced_marketplaces

HX = {"HX-Request": "true"}


def soup(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(response.data, "html.parser")


def card_ids(page: BeautifulSoup) -> list[str]:
    return [a["data-plugin"] for a in page.select("#plugin-grid article.mp-card")]


@pytest.fixture
def analyst(auth) -> str:  # type: ignore[no-untyped-def]
    return auth.login("ana@example.com")


# -- listing ----------------------------------------------------------------------------------


def test_listing_full_page_shows_granted_and_system_plugins(client, analyst) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/marketplace")
    assert response.status_code == 200
    page = soup(response)
    assert page.find("html") is not None
    assert page.find(id="nav-marketplace")["href"] == "/marketplace"
    assert page.find("form", id="marketplace-search")["action"] == "/marketplace"
    assert sorted(card_ids(page)) == sorted([*GRANTED, SYSTEM])
    assert NOT_GRANTED not in card_ids(page)
    assert page.find(id="tab-curated")["aria-current"] == "page"
    assert page.select_one("#tab-curated .count").get_text() == str(len(GRANTED) + 1)
    assert page.select_one("#tab-my .count").get_text() == "1"  # the system plugin only
    system = page.find("article", attrs={"data-plugin": SYSTEM})
    assert system.select_one(".badge-required") is not None
    team = page.find("article", attrs={"data-plugin": "team/team-tools"})
    assert team.select_one(".badge") is None
    assert team.select_one("h3 a")["href"] == "/marketplace/curated/team/team-tools"
    assert "Team Picks" in team.select_one(".mp-owner").get_text()
    assert [s.get_text(strip=True) for s in team.select(".mp-counts > span")] == ["2skills", "1agents", "1commands"]


def test_listing_fragment_for_htmx(client, analyst) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/marketplace?q=python", headers=HX)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    page = soup(response)
    assert page.find("html") is None
    root = page.find(True)
    assert root.name == "div" and root["id"] == "marketplace-results"
    assert sorted(card_ids(page)) == ["team/python-development", "wshobson/python-development"]
    tab_input = page.find("input", attrs={"name": "tab"})
    assert tab_input["form"] == "marketplace-search" and tab_input["value"] == "curated"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=PYTHON", {"team/python-development", "wshobson/python-development"}),
        ("q=platform+team", {"team/team-tools"}),  # author
        ("q=everyday", set()),
        ("q=every+day", {"team/team-tools"}),  # every word must match, anywhere
        ("category=languages", {"team/python-development", "wshobson/python-development"}),
        ("category=Other", {SYSTEM}),  # no category
        ("type=agent&q=team", {"team/team-tools"}),
        ("type=command&category=creative", set()),
    ],
)
def test_listing_filters(client, analyst, query: str, expected: set[str]) -> None:  # type: ignore[no-untyped-def]
    page = soup(client.get(f"/marketplace?{query}"))
    assert set(card_ids(page)) == expected
    if not expected:
        assert page.find(id="empty-state")["data-reason"] == "no_match"
        assert page.find(id="clear-filters")["href"] == "/marketplace"


def test_category_pills_count_within_the_search(client, analyst) -> None:  # type: ignore[no-untyped-def]
    page = soup(client.get("/marketplace?q=python"))
    pills = {
        a["data-category"]: a.select_one(".count").get_text() for a in page.select("#category-pills a[data-category]")
    }
    assert pills == {"languages": "2"}
    page = soup(client.get("/marketplace?category=languages"))
    current = page.select_one('#category-pills a[aria-current="true"]')
    assert current["data-category"] == "languages"
    assert page.find("input", attrs={"name": "category"})["value"] == "languages"


def test_sort_and_pagination(client, analyst) -> None:  # type: ignore[no-untyped-def]
    names = card_ids(soup(client.get("/marketplace?sort=name&page_size=100")))
    assert names == sorted(names, key=lambda i: (i.split("/")[1], i.split("/")[0]))
    first = soup(client.get("/marketplace?sort=name&page_size=3"))
    assert card_ids(first) == names[:3]
    assert first.find(id="page-prev")["aria-disabled"] == "true"
    next_href = first.find(id="page-next")["href"]
    assert "page=2" in next_href and "sort=name" in next_href and "page_size=3" in next_href
    second = soup(client.get(next_href))
    assert card_ids(second) == names[3:6]
    last = soup(client.get("/marketplace?sort=name&page_size=3&page=3"))
    assert card_ids(last) == names[6:]
    assert last.find(id="page-next")["aria-disabled"] == "true"


def test_invalid_listing_arguments(client, analyst) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/marketplace?tab=store").status_code == 400  # tab=flea is the flea market (issue 11)
    response = client.get("/api/marketplace/items?sort=popular")
    assert response.status_code == 400
    assert response.get_json()["field"] == "sort"
    assert client.get("/api/marketplace/items?page_size=101").get_json()["field"] == "page_size"


def test_empty_states_say_what_to_do(app, client, analyst) -> None:  # type: ignore[no-untyped-def]
    page = soup(client.get("/marketplace?tab=my"))
    assert card_ids(page) == [SYSTEM]
    from agnes import markers
    from agnes.marketplace import system
    from agnes.state import state_store

    system.set_system("team", "org-baseline", False, actor_id=None)  # keeps grants and subscriptions
    with state_store().write() as con:
        con.execute("DELETE FROM user_plugin_subscriptions")
        markers.MARKETPLACE.bump()  # what every writer of grants and subscriptions does
    page = soup(client.get("/marketplace?tab=my"))
    assert page.find(id="empty-state")["data-reason"] == "empty_stack"
    assert page.select_one("#empty-state code").get_text() == REFRESH_COMMAND
    with state_store().write() as con:
        con.execute("DELETE FROM resource_grants WHERE resource_type = 'marketplace_plugin'")
        markers.MARKETPLACE.bump()
    page = soup(client.get("/marketplace"))
    empty = page.find(id="empty-state")
    assert empty["data-reason"] == "no_grants"
    assert {a["href"] for a in empty.select("a")} >= {"mailto:admin@example.com", "mailto:cora@example.com"}


def test_anonymous_is_sent_to_sign_in(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/marketplace?tab=my")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert client.get("/api/marketplace/items").status_code == 401


def test_my_tab_lists_the_stack_after_adding(client, analyst) -> None:  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/marketplace")
    response = client.post("/marketplace/curated/team/team-tools/install", data={"csrf_token": token})
    assert response.status_code == 303
    page = soup(client.get("/marketplace?tab=my"))
    assert sorted(card_ids(page)) == sorted(["team/team-tools", SYSTEM])
    badge = page.find("article", attrs={"data-plugin": "team/team-tools"}).select_one(".badge-stack")
    assert badge is not None


# -- plugin detail ----------------------------------------------------------------------------


def test_plugin_detail_page(client, analyst) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/marketplace/curated/team/team-tools")
    assert response.status_code == 200
    page = soup(response)
    crumbs = page.find(id="breadcrumb")
    assert [a.get_text() for a in crumbs.find_all("a")] == ["Marketplace", "Curated"]
    assert crumbs.find(attrs={"aria-current": "page"}).get_text() == "team-tools"
    hero = page.find(id="plugin-hero")
    assert hero.find("h1").get_text() == "team-tools"
    assert "2.0.0" in hero.find(id="plugin-meta").get_text()
    panel = page.find(id="plugin-install")
    assert panel["data-state"] == "available"
    assert panel.find("form")["action"] == "/marketplace/curated/team/team-tools/install"
    assert "is-invisible" in panel.find(id="refresh-hint")["class"]
    skills = {a["data-item"]: a["href"] for a in page.select("#skills a[data-item]")}
    assert skills == {
        "skill:Odd Folder": "/marketplace/curated/team/team-tools/skill/Odd%20Folder",
        "skill:group/nested": "/marketplace/curated/team/team-tools/skill/group/nested",
    }
    assert [a["data-item"] for a in page.select("#agents a[data-item]")] == ["agent:reviewer"]
    assert [a["data-item"] for a in page.select("#commands a[data-item]")] == ["command:deploy"]
    assert [td.get_text() for td in page.select("#hooks tbody td")][:2] == ["PreToolUse", "Bash"]
    assert page.select_one("#mcp tbody td").get_text() == "warehouse"


def test_plugin_readme_is_sanitized(client, analyst) -> None:  # type: ignore[no-untyped-def]
    readme = soup(client.get("/marketplace/curated/team/team-tools")).select_one("#readme .prose")
    assert readme.find("h1").get_text() == "Team tools"
    assert readme.find_all(["script", "img"]) == []
    for tag in readme.find_all(True):
        assert not [a for a in tag.attrs if a.startswith("on")]
    assert not [a for a in readme.find_all("a") if "javascript" in (a.get("href") or "").lower()]


def test_plugin_detail_403_without_grant_and_404_when_missing(client, analyst) -> None:  # type: ignore[no-untyped-def]
    slug, name = NOT_GRANTED.split("/")
    response = client.get(f"/marketplace/curated/{slug}/{name}")
    assert response.status_code == 403
    assert soup(response).find(class_="error-message")["data-code"] == "access_denied"
    assert client.get(f"/api/marketplace/curated/{slug}/{name}").status_code == 403
    assert client.get(f"/marketplace/curated/{slug}/{name}/skill/anything").status_code == 403
    missing = client.get("/marketplace/curated/wshobson/no-such-plugin")
    assert missing.status_code == 404
    assert soup(missing).find(class_="error-message")["data-code"] == "plugin_not_found"
    assert client.get("/api/marketplace/curated/nope/nope").get_json()["error"] == "plugin_not_found"


def test_admin_may_look_but_not_add_without_grant(client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("boss@example.com", admin=True)
    slug, name = NOT_GRANTED.split("/")
    page = soup(client.get(f"/marketplace/curated/{slug}/{name}"))
    panel = page.find(id="plugin-install")
    assert panel["data-state"] == "unavailable"
    assert panel.find("button").has_attr("disabled")
    # No admin shortcut in the listing either (DESIGN.md: the served marketplace).
    assert NOT_GRANTED not in card_ids(soup(client.get("/marketplace?page_size=100")))


def test_add_and_remove_swap_the_install_panel(client, analyst) -> None:  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/marketplace/curated/wshobson/protect-mcp")
    headers = {**HX, "X-CSRFToken": token}
    added = client.post("/marketplace/curated/wshobson/protect-mcp/install", headers=headers)
    assert added.status_code == 200
    panel = soup(added)
    assert panel.find("html") is None
    root = panel.find(True)
    assert root["id"] == "plugin-install" and root["data-state"] == "in_stack"
    assert panel.find(id="install-state").get_text(strip=True) == "In your stack"
    assert panel.select_one("#refresh-hint code").get_text().splitlines() == [
        REFRESH_COMMAND,
        "claude plugin install protect-mcp@agnes",
    ]
    assert "is-invisible" not in panel.find(id="refresh-hint")["class"]
    assert panel.find("form")["action"] == "/marketplace/curated/wshobson/protect-mcp/remove"
    listed = client.get("/api/marketplace/items?tab=my").get_json()
    assert "wshobson/protect-mcp" in [i["id"] for i in listed["items"]]

    removed = client.post("/marketplace/curated/wshobson/protect-mcp/remove", headers=headers)
    root = soup(removed).find(True)
    assert root["id"] == "plugin-install" and root["data-state"] == "available"
    assert "Removed" in root.find(id="refresh-hint").get_text()
    listed = client.get("/api/marketplace/items?tab=my").get_json()
    assert "wshobson/protect-mcp" not in [i["id"] for i in listed["items"]]


def test_add_without_javascript_redirects_with_the_hint(client, analyst) -> None:  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/marketplace/curated/wshobson/protect-mcp")
    response = client.post("/marketplace/curated/wshobson/protect-mcp/install", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/marketplace/curated/wshobson/protect-mcp?changed=added"
    page = soup(client.get(response.headers["Location"]))
    assert page.find("html") is not None
    assert page.find(id="plugin-install")["data-state"] == "in_stack"
    assert page.select_one("#refresh-hint code").get_text().splitlines()[0] == REFRESH_COMMAND


def test_add_needs_csrf_and_a_grant(client, analyst) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/marketplace/curated/wshobson/protect-mcp/install").status_code == 400
    token = csrf_token(client, "/marketplace")
    slug, name = NOT_GRANTED.split("/")
    response = client.post(f"/marketplace/curated/{slug}/{name}/install", data={"csrf_token": token})
    assert response.status_code in (403, 404)


def test_system_plugin_is_locked(client, analyst) -> None:  # type: ignore[no-untyped-def]
    slug, name = SYSTEM.split("/")
    panel = soup(client.get(f"/marketplace/curated/{slug}/{name}")).find(id="plugin-install")
    assert panel["data-state"] == "system"
    assert panel.find(id="install-state").get_text(strip=True) == "Required by your org"
    assert panel.find("form") is None
    token = csrf_token(client, "/marketplace")
    refused = client.post(f"/marketplace/curated/{slug}/{name}/remove", headers={**HX, "X-CSRFToken": token})
    assert refused.status_code == 409
    assert soup(refused).find(True)["id"] == "plugin-install"


def test_same_plugin_name_in_two_marketplaces(client, analyst) -> None:  # type: ignore[no-untyped-def]
    team = client.get("/api/marketplace/curated/team/python-development").get_json()
    theirs = client.get("/api/marketplace/curated/wshobson/python-development").get_json()
    assert team["version"] == "0.9.0" and [s["id"] for s in team["skills"]] == ["pytest-style"]
    assert theirs["marketplace_name"] == "Claude Code Workflows" and len(theirs["skills"]) > 5


# -- item pages -------------------------------------------------------------------------------


def test_skill_page(client, analyst) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/marketplace/curated/wshobson/accessibility-compliance/skill/wcag-audit-patterns")
    assert response.status_code == 200
    page = soup(response)
    crumbs = [a.get_text() for a in page.select("#breadcrumb a")]
    assert crumbs == ["Marketplace", "Curated", "accessibility-compliance"]
    fields = dict(
        zip(
            [d.get_text() for d in page.select("#frontmatter dt")],
            [d.get_text() for d in page.select("#frontmatter dd")],
            strict=True,
        )
    )
    assert fields["name"] == "wcag-audit-patterns"
    assert page.select_one("#body .prose h1").get_text() == "WCAG Audit Patterns"
    files = [li.contents[0].strip() for li in page.select("#files li")]
    assert files == ["SKILL.md", "references/details.md"]
    assert page.find(id="open-parent")["href"] == "/marketplace/curated/wshobson/accessibility-compliance"
    assert page.find(id="install-button") is None


def test_odd_skill_agent_and_command_pages(client, analyst) -> None:  # type: ignore[no-untyped-def]
    odd = soup(client.get("/marketplace/curated/team/team-tools/skill/Odd%20Folder"))
    assert odd.find("h1").get_text() == "Odd Name/With Slash"
    assert odd.select_one("#body .prose script") is None
    assert "Body text" in odd.select_one("#body .prose").get_text()
    nested = client.get("/marketplace/curated/team/team-tools/skill/group/nested")
    assert soup(nested).find("h1").get_text() == "nested"
    agent = soup(client.get("/marketplace/curated/team/team-tools/agent/reviewer"))
    fields = {d.get_text(): d.find_next("dd").get_text() for d in agent.select("#frontmatter dt")}
    assert fields["tools"] == "Read, Grep" and fields["model"] == "sonnet"
    command = soup(client.get("/marketplace/curated/team/team-tools/command/deploy"))
    assert command.find("h1").get_text() == "/deploy"
    assert command.find(id="frontmatter") is None
    assert "$ARGUMENTS" in command.select_one("#body .prose").get_text()


@pytest.mark.parametrize(
    "path",
    [
        "skill/no-such-skill",
        "skill/..%2F..%2F..%2Fstate",
        "skill/../../python-development",
        "agent/..%2Freviewer",
        "command/deploy.md",
    ],
)
def test_item_not_found_and_traversal(client, analyst, path: str) -> None:  # type: ignore[no-untyped-def]
    assert client.get(f"/marketplace/curated/team/team-tools/{path}").status_code == 404


def test_symlink_planted_in_the_working_copy_is_refused(app, client, analyst) -> None:  # type: ignore[no-untyped-def]
    data = client.get("/api/marketplace/curated/team/team-tools").get_json()
    skill_path = next(s["path"] for s in data["skills"] if s["id"] == "group/nested")
    from agnes.models import marketplaces
    from agnes.state import state_store

    with state_store().read() as con:
        content_dir = marketplaces.get_plugin(con, "team", "team-tools").content_dir
    root = Path(app.config["AGNES_DATA_DIR"]) / content_dir
    secret = root.parent.parent / "outside.md"
    secret.write_text("---\nname: leaked\n---\nsecret")
    target = root / skill_path
    target.unlink()
    target.symlink_to(secret)
    from agnes.plugin import contents

    contents._ITEMS.data.clear()
    assert client.get("/marketplace/curated/team/team-tools/skill/group/nested").status_code == 404


# -- JSON twins -------------------------------------------------------------------------------


def test_json_listing_matches_the_page(client, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("ana@example.com")
    auth.login("ana@example.com")
    api = client.get("/api/marketplace/items?q=python&sort=name", headers=bearer(token)).get_json()
    page = soup(client.get("/marketplace?q=python&sort=name"))
    assert [i["id"] for i in api["items"]] == card_ids(page)
    assert api["total"] == 2 and api["tab_counts"] == {"curated": 2, "my": 0}
    assert api["categories"] == [{"name": "languages", "count": 2}]
    assert set(api["items"][0]) >= {
        "id",
        "name",
        "description",
        "category",
        "skills",
        "agents",
        "commands",
        "is_system",
        "in_stack",
        "marketplace_name",
        "curator",
        "version",
    }


def test_json_plugin_and_item(client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("ana@example.com"))
    detail = client.get("/api/marketplace/curated/team/team-tools", headers=headers).get_json()
    assert detail["id"] == "team/team-tools" and detail["in_stack"] is False and detail["granted"] is True
    assert [a["id"] for a in detail["agents"]] == ["reviewer"]
    assert detail["mcp_servers"] == [{"name": "warehouse", "type": "http", "target": "https://mcp.example"}]
    assert "<script" not in detail["readme_html"]
    item = client.get("/api/marketplace/curated/team/team-tools/agent/reviewer", headers=headers).get_json()
    assert item["frontmatter"]["model"] == "sonnet" and item["plugin"]["id"] == "team/team-tools"
    missing = client.get("/api/marketplace/curated/team/team-tools/agent/nobody", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["error"] == "agent_not_found"


def test_cached_cards_follow_changes(client, analyst, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agnes.marketplace import cards, curated, system

    owner = lambda: soup(client.get("/marketplace")).select_one('article[data-plugin="team/team-tools"] .mp-owner')  # noqa: E731
    assert "Team Picks" in owner().get_text()
    # A rename does not bump the change marker; the cache revalidates after RECHECK_SECONDS.
    monkeypatch.setattr(cards, "RECHECK_SECONDS", 0.0)
    curated.update_marketplace("team", {"name": "Team Favourites"})
    assert "Team Favourites" in owner().get_text()
    # Marking a plugin system bumps the marker: the next request shows the badge.
    monkeypatch.setattr(cards, "RECHECK_SECONDS", 3600.0)
    system.set_system("team", "team-tools", True, actor_id=None)
    card = soup(client.get("/marketplace")).select_one('article[data-plugin="team/team-tools"]')
    assert card.select_one(".badge-required") is not None
