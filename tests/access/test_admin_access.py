"""/admin/access: groups, every item in blocks with a checkbox, toggles that swap one row, bulk
grants with a count first, system plugins locked (409 in place), orphaned grants, deep links,
the per-resource view and its JSON twins."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.access.conftest import HX, count_rows, form_token, register_tables, soup
from tests.conftest import bearer

pytestmark = pytest.mark.synced_marketplaces

SYSTEM = "team/org-baseline"


def _group(name: str = "Finance") -> str:
    from agnes import people

    return people.create_group(name, actor_id=None).id


def _grant_ids(group_id: str) -> set[tuple[str, str]]:
    from agnes import people

    return {(g.resource_type, g.resource_id) for g in people.list_grants(group_id=group_id)}


def test_page_lists_groups_with_origin_and_items_in_blocks(admin: FlaskClient) -> None:
    group_id = _group()
    register_tables(["orders", "invoices"], source="erp")
    page = soup(admin.get(f"/admin/access?group={group_id}"))
    origins = {li["data-group-id"]: li.select_one(".pill").text for li in page.select("#access-groups li")}
    assert origins["admin"] == "system" and origins["everyone"] == "system" and origins[group_id] == "custom"
    blocks = {b["data-block"]: b for b in page.select(".access-block")}
    assert {"marketplace_plugin:Claude Code Workflows", "marketplace_plugin:Team Picks", "table:erp"} <= set(blocks)
    # Every plugin and table has a row whose id is its deep link.
    assert page.find(id="table:orders") is not None
    assert len(blocks["marketplace_plugin:Claude Code Workflows"].select("tr.access-row")) > 80
    # The system plugin is checked and disabled, with a SYSTEM pill.
    row = page.find(id=f"marketplace_plugin:{SYSTEM}")
    box = row.select_one("input[type=checkbox]")
    assert box.has_attr("checked") and box.has_attr("disabled") and row.select_one(".pill-system").text == "SYSTEM"
    # Without JavaScript each row has a submit button in <noscript>.
    assert page.find(id="table:orders").select_one("noscript button").text == "Grant"
    # The filter narrows the items (and is a fragment for htmx).
    fragment = soup(admin.get(f"/admin/access?group={group_id}&q=invoi", headers=HX))
    assert fragment.find("html") is None and fragment.select_one("section#access-resources") is not None
    assert [tr["id"] for tr in fragment.select("tr.access-row")] == ["table:invoices"]


def test_toggle_swaps_one_row_and_works_without_js(admin: FlaskClient) -> None:
    group_id = _group()
    register_tables(["orders"])
    token = form_token(admin)
    body = {"csrf_token": token, "group_id": group_id, "resource_type": "table", "resource_id": "orders"}

    granted = admin.post("/admin/access/grants", data=body, headers=HX)
    row = soup(granted)
    assert granted.status_code == 200 and row.find("html") is None
    tr = row.select_one("tr")
    assert tr["id"] == "table:orders" and tr.select_one("input[type=checkbox]").has_attr("checked")
    assert ("table", "orders") in _grant_ids(group_id)
    revoke_action = tr.select_one("form")["action"]

    revoked = admin.post(revoke_action, data=body, headers=HX)
    assert revoked.status_code == 200 and not soup(revoked).select_one("input[type=checkbox]").has_attr("checked")
    assert ("table", "orders") not in _grant_ids(group_id)

    plain = admin.post("/admin/access/grants", data=body)  # no JavaScript: back to the row's deep link
    assert plain.status_code == 303 and plain.location.endswith(f"/admin/access?group={group_id}#table:orders")
    assert ("table", "orders") in _grant_ids(group_id)


def test_forced_revoke_of_a_system_grant_is_409_in_place(admin: FlaskClient) -> None:
    from agnes import people

    group_id = _group()
    grant = next(g for g in people.list_grants(group_id=group_id) if g.resource_id == SYSTEM)
    body = {"csrf_token": form_token(admin), "group_id": group_id, "resource_type": "marketplace_plugin"}
    body["resource_id"] = SYSTEM
    before = count_rows("resource_grants")

    refused = admin.post(f"/admin/access/grants/{grant.id}/delete", data=body, headers=HX)
    assert refused.status_code == 409
    tr = soup(refused).select_one("tr")
    assert tr["id"] == f"marketplace_plugin:{SYSTEM}" and tr.select_one("input[type=checkbox]").has_attr("checked")
    assert "system plugin" in tr.select_one(".row-message").text
    assert count_rows("resource_grants") == before

    page = admin.post(f"/admin/access/grants/{grant.id}/delete", data=body)  # without JavaScript: the page
    assert page.status_code == 409 and soup(page).select_one("#access-notice") is not None
    api = admin.delete(f"/api/admin/grants/{grant.id}", headers={"X-CSRFToken": body["csrf_token"]})
    assert api.status_code == 409 and api.get_json()["error"] == "cannot_revoke_system_grant"
    assert count_rows("resource_grants") == before


def test_bulk_grant_and_revoke_confirm_with_the_count_first(admin: FlaskClient) -> None:
    group_id = _group()
    register_tables(["a1", "a2", "a3"], source="crm")
    query = f"group={group_id}&resource_type=table&block=crm&action=grant"
    confirm = admin.get(f"/admin/access/bulk?{query}", headers=HX)
    box = soup(confirm).select_one("div#bulk-confirm")
    assert soup(confirm).find("html") is None and box["data-count"] == "3"
    assert soup(admin.get(f"/admin/access/bulk?{query}")).select_one("#bulk-confirm-page #bulk-count").text == "3"
    token = form_token(admin)
    form = {"csrf_token": token, "group": group_id, "resource_type": "table", "block": "crm", "action": "grant"}
    done = admin.post("/admin/access/bulk", data=form, headers=HX)
    assert done.status_code == 200 and soup(done).select_one("section#access-resources") is not None
    assert {("table", t) for t in ("a1", "a2", "a3")} <= _grant_ids(group_id)
    # Revoke all of the Team Picks block leaves its system plugin granted.
    revoke = {**form, "resource_type": "marketplace_plugin", "block": "Team Picks", "action": "revoke"}
    admin.post("/admin/access/bulk", data={**revoke, "action": "grant"}, headers=HX)
    plain = admin.post("/admin/access/bulk", data=revoke)
    assert plain.status_code == 303
    left = {rid for t, rid in _grant_ids(group_id) if t == "marketplace_plugin"}
    assert left == {SYSTEM}


def test_orphaned_grants_members_and_redirect(admin: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes import people

    group_id = _group()
    people.add_member(group_id, "admin@example.com", actor_id=None)
    people.create_grant(group_id, "table", "gone_table", actor_id=None)
    page = soup(admin.get(f"/admin/access?group={group_id}"))
    assert [c.text for c in page.select("#orphaned code")] == ["gone_table"]
    member = page.select_one('#access-members li[data-email="admin@example.com"]')
    assert "admin" in member.text
    old = admin.get(f"/admin/grants?group={group_id}")
    assert old.status_code == 301 and old.location.endswith(f"/admin/access?group={group_id}")
    assert soup(admin.get("/admin/access")).select_one("#access-choose") is not None


def test_resource_view_and_api_twins(admin: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes import people

    finance = _group()
    ana = auth.user("ana@example.com")
    people.add_member(finance, "ana@example.com", actor_id=None)
    people.create_grant(finance, "marketplace_plugin", "wshobson/ui-design", actor_id=None)
    page = soup(admin.get("/admin/access/resources/marketplace_plugin/wshobson/ui-design"))
    assert [a.text for a in page.select("#reach-groups tbody a")] == ["Finance"]
    users = {tr["data-user-id"]: tr.find_all("td")[1].text for tr in page.select("#reach-users tbody tr")}
    assert users[ana] == "Finance" and "Admin" in users.values()
    assert page.select_one("#subscriber-count").text == "0"
    fragment = soup(admin.get("/admin/access/resources/marketplace_plugin/wshobson/ui-design?page=1", headers=HX))
    assert fragment.find("html") is None and fragment.select_one("section#reach-users") is not None

    token = bearer(auth.token("admin@example.com", admin=True))
    reach = admin.get("/api/admin/resources/marketplace_plugin/wshobson/ui-design/access", headers=token).get_json()
    assert reach["granted_groups"] == ["Finance"] and ana in {u["user_id"] for u in reach["users"]}
    data = admin.get(f"/api/admin/access?group={finance}", headers=token).get_json()
    item = next(i for b in data["blocks"] for i in b["items"] if i["id"] == "wshobson/ui-design")
    assert item["granted"] and item["origin"] == "manual"
    missing = admin.get("/api/admin/resources/table/nope/access", headers=token)
    assert missing.status_code == 404 and missing.get_json()["error"] == "resource_not_found"


def test_google_sync_now_shows_the_job(admin: FlaskClient) -> None:
    token = form_token(admin)
    fragment = admin.post("/admin/access/google-sync", data={"csrf_token": token}, headers=HX)
    assert fragment.status_code == 200 and soup(fragment).select_one("div.job-status") is not None
    assert soup(fragment).find("html") is None
    plain = admin.post("/admin/access/google-sync", data={"csrf_token": token})
    assert plain.status_code == 303 and plain.location.endswith("/admin/access")
