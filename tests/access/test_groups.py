"""Groups, members and grants: admin pages (HTMX), JSON API and their guards."""

from __future__ import annotations

import json

import pytest
from bs4 import BeautifulSoup
from flask.testing import FlaskClient

from agnes.models import audit as audit_model
from agnes.state import state_store
from tests.conftest import bearer, csrf_token


@pytest.fixture
def admin(client: FlaskClient, auth):  # type: ignore[no-untyped-def]
    auth.login("admin@example.com")
    return client


def soup(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(response.data, "html.parser")


def create_group(client: FlaskClient, name: str) -> str:
    response = client.post("/admin/groups", data={"name": name, "csrf_token": csrf_token(client, "/admin/groups")})
    assert response.status_code == 303, response.data
    return response.headers["Location"].rsplit("/", 1)[1]


def test_groups_page_lists_system_groups(admin: FlaskClient) -> None:
    page = soup(admin.get("/admin/groups"))
    names = [a.text for a in page.select("#groups-table tbody a")]
    assert names[:2] == ["Admin", "Everyone"]
    assert page.select_one("#group-admin .pill-system") is not None


def test_groups_table_fragment(admin: FlaskClient) -> None:
    fragment = soup(admin.get("/admin/groups", headers={"HX-Request": "true"}))
    assert fragment.find("html") is None and fragment.select_one("table#groups-table") is not None


def test_create_rename_delete_group(admin: FlaskClient) -> None:
    group_id = create_group(admin, "Finance")
    page = soup(admin.get(f"/admin/groups/{group_id}"))
    assert page.select_one("#group-page h1").text.strip() == "Finance"
    token = csrf_token(admin, f"/admin/groups/{group_id}")
    renamed = admin.post(
        f"/admin/groups/{group_id}", data={"name": "Finance EU", "description": "d", "csrf_token": token}
    )
    assert renamed.status_code == 303
    assert soup(admin.get(f"/admin/groups/{group_id}")).select_one("#group-page h1").text.strip() == "Finance EU"
    deleted = admin.post(f"/admin/groups/{group_id}/delete", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert deleted.headers["HX-Redirect"] == "/admin/groups"
    assert admin.get(f"/admin/groups/{group_id}").status_code == 404


def test_duplicate_and_empty_names_rerender_form_with_422(admin: FlaskClient) -> None:
    create_group(admin, "Sales")
    token = csrf_token(admin, "/admin/groups")
    duplicate = admin.post("/admin/groups", data={"name": "sales", "csrf_token": token}, headers={"HX-Request": "true"})
    assert duplicate.status_code == 409
    form = soup(duplicate)
    assert form.find("html") is None and form.select_one("form#group-create") is not None
    assert "already exists" in form.select_one("#f-name-error").text
    assert form.select_one("#f-name")["value"] == "sales"
    empty = admin.post("/admin/groups", data={"name": "  ", "csrf_token": token})
    assert empty.status_code == 422 and soup(empty).find("html") is not None


def test_system_groups_cannot_be_renamed_or_deleted(admin: FlaskClient) -> None:
    token = csrf_token(admin, "/admin/groups/admin")
    rename = admin.post("/admin/groups/admin", data={"name": "Root", "csrf_token": token})
    assert rename.status_code == 409
    delete = admin.post("/admin/groups/everyone/delete", data={"csrf_token": token})
    assert delete.status_code == 409
    assert soup(delete).select_one(".error-message")["data-code"] == "system_group"


def test_add_and_remove_member_through_fragment(admin: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    auth.user("ana@example.com")
    group_id = create_group(admin, "Analysts")
    token = csrf_token(admin, f"/admin/groups/{group_id}")
    added = admin.post(
        f"/admin/groups/{group_id}/members",
        data={"email": "ANA@example.com", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert added.status_code == 200
    fragment = soup(added)
    assert fragment.find("html") is None
    rows = fragment.select("section#members #member-table tbody tr[data-email]")
    assert [r["data-email"] for r in rows] == ["ana@example.com"]
    user_id = rows[0]["id"].removeprefix("member-")
    again = admin.post(
        f"/admin/groups/{group_id}/members",
        data={"email": "ana@example.com", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert again.status_code == 409 and "already a member" in soup(again).select_one("#f-email-error").text
    unknown = admin.post(
        f"/admin/groups/{group_id}/members",
        data={"email": "ghost@example.com", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert unknown.status_code == 422 and "No user" in soup(unknown).select_one("#f-email-error").text
    removed = admin.post(
        f"/admin/groups/{group_id}/members/{user_id}/remove", data={"csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert soup(removed).select("#member-table tbody tr[data-email]") == []
    # Without htmx the same form redirects back to the page (works without JavaScript).
    plain = admin.post(f"/admin/groups/{group_id}/members", data={"email": "ana@example.com", "csrf_token": token})
    assert plain.status_code == 303 and plain.headers["Location"] == f"/admin/groups/{group_id}"


def test_last_admin_cannot_be_removed(admin: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes.models import users

    with state_store().read() as con:
        seed_id = users.get_user_by_email(con, "admin@example.com").id
    token = csrf_token(admin, "/admin/groups/admin")
    response = admin.post(
        f"/admin/groups/admin/members/{seed_id}/remove", data={"csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 409
    assert "last administrator" in soup(response).select_one("#member-error").text
    auth.user("second@example.com")
    admin.post("/admin/groups/admin/members", data={"email": "second@example.com", "csrf_token": token})
    ok = admin.post(f"/admin/groups/admin/members/{seed_id}/remove", data={"csrf_token": token})
    assert ok.status_code == 303


def test_everyone_membership_is_implicit(admin: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    auth.user("new@example.com")
    page = soup(admin.get("/admin/groups/everyone"))
    assert "new@example.com" in [r["data-email"] for r in page.select("#member-table tbody tr[data-email]")]
    assert page.select_one("form#member-add") is None
    response = admin.post(
        "/api/admin/groups/everyone/members",
        json={"email": "new@example.com"},
        headers={"X-CSRFToken": csrf_token(admin, "/admin/groups")},
    )
    assert response.status_code == 409


def test_analyst_gets_403_on_admin_pages(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("analyst@example.com")
    response = client.get("/admin/groups")
    assert response.status_code == 403
    assert soup(response).select_one(".error-message")["data-code"] == "admin_required"
    home = soup(client.get("/"))
    assert home.select_one("#admin-nav") is None


def test_api_groups_members_grants(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("admin@example.com")
    auth.user("ana@example.com")
    h = bearer(token)
    created = client.post("/api/admin/groups", json={"name": "Data", "description": "people"}, headers=h)
    assert created.status_code == 201
    gid = created.get_json()["id"]
    assert client.post("/api/admin/groups", json={"name": "data"}, headers=h).get_json()["error"] == "group_exists"
    missing_name = client.post("/api/admin/groups", json={}, headers=h)
    assert missing_name.status_code == 400 and missing_name.get_json()["field"] == "name"
    assert (
        client.post(f"/api/admin/groups/{gid}/members", json={"email": "ana@example.com"}, headers=h).status_code == 201
    )
    members = client.get(f"/api/admin/groups/{gid}/members", headers=h).get_json()["members"]
    assert [(m["email"], m["sources"]) for m in members] == [("ana@example.com", ["admin"])]
    grant = client.post(
        "/api/admin/grants", json={"group_id": gid, "resource_type": "table", "resource_id": "orders"}, headers=h
    )
    assert grant.status_code == 201
    dup = client.post(
        "/api/admin/grants", json={"group_id": gid, "resource_type": "table", "resource_id": "orders"}, headers=h
    )
    assert dup.status_code == 409
    bad_type = client.post(
        "/api/admin/grants", json={"group_id": gid, "resource_type": "nope", "resource_id": "x"}, headers=h
    )
    assert bad_type.status_code == 400 and bad_type.get_json()["field"] == "resource_type"
    bad_id = client.post(
        "/api/admin/grants",
        json={"group_id": gid, "resource_type": "marketplace_plugin", "resource_id": "../etc"},
        headers=h,
    )
    assert bad_id.status_code == 400 and bad_id.get_json()["field"] == "resource_id"
    ana = auth.token("ana@example.com")
    access = client.get("/api/me/effective-access", headers=bearer(ana)).get_json()["access"]
    assert access == [{"resource_type": "table", "resource_id": "orders", "via_groups": ["Data"]}]
    grants = client.get("/api/admin/grants?resource_type=table", headers=h).get_json()["grants"]
    assert client.delete(f"/api/admin/grants/{grants[0]['id']}", headers=h).status_code == 204
    assert client.get("/api/me/effective-access", headers=bearer(ana)).get_json()["access"] == []
    assert client.delete(f"/api/admin/groups/{gid}", headers=h).status_code == 204
    assert client.get(f"/api/admin/groups/{gid}", headers=h).status_code == 404
    types = client.get("/api/admin/resource-types", headers=h).get_json()["resource_types"]
    assert {t["key"] for t in types} >= {"marketplace_plugin", "table"}


def test_deleting_group_removes_its_grants_and_memberships(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    h = bearer(auth.token("admin@example.com"))
    auth.user("ana@example.com")
    gid = client.post("/api/admin/groups", json={"name": "Temp"}, headers=h).get_json()["id"]
    client.post(f"/api/admin/groups/{gid}/members", json={"email": "ana@example.com"}, headers=h)
    client.post("/api/admin/grants", json={"group_id": gid, "resource_type": "table", "resource_id": "t1"}, headers=h)
    client.delete(f"/api/admin/groups/{gid}", headers=h)
    with state_store().read() as con:
        assert con.execute("SELECT count(*) FROM user_group_members WHERE group_id = ?", [gid]).fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM resource_grants WHERE group_id = ?", [gid]).fetchone() == (0,)


def test_state_changes_are_audited_without_secrets(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    raw = auth.token("admin@example.com")
    client.post(
        "/api/admin/groups", json={"name": "Audited", "api_key": "sk-123", "note": f"Bearer {raw}"}, headers=bearer(raw)
    )
    with state_store().read() as con:
        entries = audit_model.list_audit(con, action_prefix="group.create")
    assert len(entries) == 1
    entry = entries[0]
    assert entry.client_kind == "cli" and entry.result == "ok" and entry.resource.startswith("group:")
    assert raw not in str(entry.params) and "sk-123" not in str(entry.params)
    assert entry.correlation_id


def test_a_change_whose_audit_row_fails_does_not_happen(client: FlaskClient, auth, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The audit row is written in the change's own unit: no row, no change (issue 10: the change
    used to commit while the failed audit write was swallowed)."""
    headers = bearer(auth.token("admin@example.com"))

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr("agnes.models.audit.insert_audit", broken)
    response = client.post("/api/admin/groups", json={"name": "Never created"}, headers=headers)
    assert response.status_code == 500
    with state_store().read() as con:
        assert con.execute("SELECT count(*) FROM user_groups WHERE name = 'Never created'").fetchone() == (0,)


# -- audit: a client body with keys named like describe()'s own arguments ----------------------


def test_patch_body_with_action_and_resource_keys_is_audited_not_500(app, client, auth):
    from agnes import people

    group = people.create_group("reviewers", actor_id=None)
    token = auth.token("boss@example.com", admin=True)
    response = client.patch(
        f"/api/admin/groups/{group.id}", json={"name": "renamed", "action": "x", "resource": "y"}, headers=bearer(token)
    )
    assert response.status_code == 200, response.data
    assert response.get_json()["name"] == "renamed"
    with state_store().read() as con:
        row = con.execute("SELECT action, resource, params FROM audit_log WHERE action = 'group.update'").fetchone()
    assert row is not None
    assert row[1] == f"group:{group.id}"
    assert json.loads(row[2])["name"] == "renamed"


# -- secrets: a token given as the user name of a URL (https://<token>@host) -------------------------


def test_redaction_masks_url_userinfo_without_a_password():
    from agnes.audit import redact, redact_text

    shown = redact_text("could not fetch https://ghp_abcdef123@mirror.example.com/x.git: refused")
    assert "ghp_abcdef123" not in shown and "mirror.example.com/x.git" in shown
    assert "s3cret" not in redact({"url": "https://user:s3cret@host/x"})["url"]
    assert redact_text("see https://host/path@v2 and a@b.example") == "see https://host/path@v2 and a@b.example"


def test_users_page_add_and_deactivate(admin: FlaskClient) -> None:
    token = csrf_token(admin, "/admin/users")
    assert (
        admin.post("/admin/users", data={"email": "new@example.com", "name": "New", "csrf_token": token}).status_code
        == 303
    )
    page = soup(admin.get("/admin/users?q=new"))  # the add redirects to the new user's page
    rows = page.select("#users-table tbody tr[id]")
    assert len(rows) == 1
    user_id = rows[0]["id"].removeprefix("user-")
    deactivated = admin.post(f"/admin/users/{user_id}/active", data={"active": "0", "csrf_token": token})
    assert deactivated.status_code == 303 and deactivated.location.endswith(f"/admin/users/{user_id}#user-status")
    assert soup(admin.get("/admin/users?q=new")).select_one(f"#user-{user_id}").find_all("td")[4].text == "deactivated"
    fragment = soup(admin.get("/admin/users?q=new", headers={"HX-Request": "true"}))
    assert fragment.find("html") is None and fragment.select_one("div#users-table table") is not None
    dup = admin.post("/admin/users", data={"email": "new@example.com", "csrf_token": token})
    assert dup.status_code == 409
