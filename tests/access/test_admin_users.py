"""/admin/users (50 a page, filters, sort) and /admin/users/<id> (sections, each a fragment), with
their JSON twins and CLI-facing API."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.access.conftest import HX, count_rows, form_token, soup
from tests.conftest import bearer


def _many_users(n: int) -> None:
    from agnes.models import users
    from agnes.state import state_store

    with state_store().write() as con:
        for i in range(n):
            users.create_user(con, f"user{i:03d}@example.com", f"User {i}")


def test_users_list_pages_filters_and_sort(admin: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes import people
    from agnes.models import users
    from agnes.state import state_store

    _many_users(60)
    finance = people.create_group("Finance", actor_id=None)
    people.add_member(finance.id, "user007@example.com", actor_id=None)
    gone = auth.user("user010@example.com")
    people.set_user_active(gone, False, actor_id=auth.user("admin@example.com"))
    with state_store().write() as con:
        users.record_login(con, auth.user("user042@example.com"), "google")

    page = soup(admin.get("/admin/users"))
    assert (
        page.select_one("#users-total").text.startswith("61 users")
        and "page 1 of 2" in page.select_one("#users-total").text
    )
    assert len(page.select("#users-table tbody tr[id]")) == 50
    second = soup(admin.get("/admin/users?page=2", headers=HX))
    assert second.find("html") is None and len(second.select("div#users-table tbody tr[id]")) == 11

    def emails(query: str) -> list[str]:
        return [tr["data-email"] for tr in soup(admin.get(f"/admin/users?{query}")).select("#users-table tbody tr[id]")]

    assert emails(f"group={finance.id}") == ["user007@example.com"]
    assert emails("status=deactivated") == ["user010@example.com"]
    assert emails("method=google") == ["user042@example.com"]
    assert emails("sort=last_sign_in")[0] == "user042@example.com"
    assert emails("q=user05") == [f"user05{i}@example.com" for i in range(10)]
    api = admin.get(
        "/api/admin/users?status=active&per_page=5", headers=bearer(auth.token("admin@example.com"))
    ).get_json()
    assert api["total"] == 60 and api["pages"] == 12 and len(api["users"]) == 5


def test_user_page_sections_and_changes(admin: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes import people
    from agnes.auth.pat import create_pat
    from agnes.models import groups
    from agnes.state import state_store

    ana = auth.user("ana@example.com", name="Ana")
    finance = people.create_group("Finance", actor_id=None)
    workspace = people.create_group("Workspace Team", actor_id=None)
    with state_store().write() as con:  # a row Google sync wrote (read-only on the page)
        groups.add_member(con, workspace.id, ana, source=groups.MembershipSource.GOOGLE_SYNC)
    create_pat(ana, "laptop", 30)
    create_pat(ana, "ci", 30)
    token = form_token(admin)

    page = soup(admin.get(f"/admin/users/{ana}"))
    ids = [s["id"] for s in page.select("#user-page > section")]
    assert ids == [
        "user-profile",
        "user-groups",
        "user-tokens",
        "user-access",
        "user-stack",
        "user-sessions",
        "user-audit",
        "user-claude-code",  # registered by the Claude Code area (agnes.views.admin.claude_code)
        "user-status",
    ]
    google_row = page.select_one(f'#user-groups tr[data-group-id="{workspace.id}"]')
    assert "google_sync" in google_row.text and google_row.select_one("form") is None

    renamed = soup(admin.post(f"/admin/users/{ana}", data={"name": "Ana Lyst", "csrf_token": token}, headers=HX))
    assert (
        renamed.find("html") is None
        and renamed.select_one("section#user-profile input[name=name]")["value"] == "Ana Lyst"
    )
    added = admin.post(
        f"/admin/users/{ana}/memberships", data={"group_id": finance.id, "csrf_token": token}, headers=HX
    )
    assert soup(added).select_one(f'section#user-groups tr[data-group-id="{finance.id}"]') is not None
    plain = admin.post(f"/admin/users/{ana}/memberships/{finance.id}/remove", data={"csrf_token": token})
    assert plain.status_code == 303 and plain.location.endswith(f"/admin/users/{ana}#user-groups")
    before = count_rows("user_group_members")
    managed = admin.post(
        f"/admin/users/{ana}/memberships/{workspace.id}/remove", data={"csrf_token": token}, headers=HX
    )
    refusal = soup(managed).select_one(".section-error")
    assert managed.status_code == 409 and refusal["data-code"] == "managed_membership" and "Google" in refusal.text
    assert count_rows("user_group_members") == before

    one = create_pat(ana, "spare", 30)[0]
    revoked_one = soup(admin.post(f"/admin/users/{ana}/tokens/{one.id}/revoke", data={"csrf_token": token}, headers=HX))
    assert revoked_one.find("html") is None
    assert revoked_one.select_one(f"section#user-tokens #token-{one.id} .status").text == "revoked"
    plain = admin.post(f"/admin/users/{ana}/tokens/revoke-all", data={"csrf_token": token})
    assert plain.status_code == 303 and plain.location.endswith(f"/admin/users/{ana}#user-tokens")
    create_pat(ana, "again", 30)
    tokens = soup(admin.post(f"/admin/users/{ana}/tokens/revoke-all", data={"csrf_token": token}, headers=HX))
    assert tokens.select_one("section#user-tokens .count").text == "0 active"
    api = admin.get("/api/admin/users/ana@example.com/tokens", headers=bearer(auth.token("admin@example.com")))
    assert {t["status"] for t in api.get_json()["tokens"]} == {"revoked"}


def test_deactivate_confirm_and_refusals_in_place(admin: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes.models import users
    from agnes.state import state_store

    admin_id = auth.user("admin@example.com")
    bo = auth.user("bo@example.com")
    token = form_token(admin)
    confirm = soup(admin.get(f"/admin/users/{bo}/status", headers=HX))
    assert confirm.find("html") is None and confirm.select_one("section#user-status #user-status-confirm") is not None
    assert soup(admin.get(f"/admin/users/{bo}/status")).select_one("#user-page #user-status-confirm") is not None
    done = soup(admin.post(f"/admin/users/{bo}/active", data={"active": "0", "csrf_token": token}, headers=HX))
    assert done.select_one("section#user-status")["data-active"] == "false"

    for headers in (HX, {}):
        refused = admin.post(
            f"/admin/users/{admin_id}/active", data={"active": "0", "csrf_token": token}, headers=headers
        )
        assert refused.status_code == 409
        assert soup(refused).select_one("#user-status .section-error")["data-code"] == "cannot_deactivate_self"
    with state_store().read() as con:
        assert users.get_user(con, admin_id).active

    # The last active administrator cannot leave Admin either (shown in the groups section).
    before = count_rows("user_group_members")
    last = admin.post(f"/admin/users/{admin_id}/memberships/admin/remove", data={"csrf_token": token}, headers=HX)
    assert last.status_code == 409 and soup(last).select_one("section#user-groups .section-error") is not None
    assert soup(last).select_one(".section-error")["data-code"] == "last_admin"
    assert count_rows("user_group_members") == before


def test_user_api_twins(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes import people

    headers = bearer(auth.token("admin@example.com", admin=True))
    ana = auth.user("ana@example.com")
    finance = people.create_group("Finance", actor_id=None)
    body = client.get("/api/admin/users/ana@example.com", headers=headers).get_json()
    sections = {"profile", "groups", "tokens", "access", "stack", "sessions", "audit", "claude_code", "status"}
    assert set(body["sections"]) == sections
    assert body["sections"]["claude_code"] == {"loads": []}
    assert client.patch(f"/api/admin/users/{ana}", json={"name": "Ana"}, headers=headers).get_json()["name"] == "Ana"
    bad = client.patch(f"/api/admin/users/{ana}", json={"name": ["x"]}, headers=headers)
    assert bad.status_code == 400 and bad.get_json()["field"] == "name"
    added = client.post(f"/api/admin/users/{ana}/memberships", json={"group_id": "Finance"}, headers=headers)
    assert added.status_code == 201 and "Finance" in {m["group_name"] for m in added.get_json()["memberships"]}
    assert client.delete(f"/api/admin/users/{ana}/memberships/{finance.id}", headers=headers).status_code == 204
    assert client.post(f"/api/admin/users/{ana}/deactivate", headers=headers).get_json()["active"] is False
    assert client.post(f"/api/admin/users/{ana}/activate", headers=headers).get_json()["active"] is True
    missing = client.get("/api/admin/users/nobody@example.com", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["error"] == "user_not_found"
