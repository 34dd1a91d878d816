"""Personal access tokens: create once, use, expire, revoke; a PAT cannot mint a PAT."""

from __future__ import annotations

from datetime import timedelta

from bs4 import BeautifulSoup
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from agnes.models import tokens, utcnow
from agnes.state import state_store
from tests.conftest import bearer, csrf_token


def test_create_on_profile_shows_token_once_and_stores_only_hash(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("analyst@example.com")
    response = client.post(
        "/me/tokens", data={"name": "laptop", "expires_days": "30", "csrf_token": csrf_token(client, "/me")}
    )
    assert response.status_code == 201
    soup = BeautifulSoup(response.data, "html.parser")
    raw = soup.select_one("#new-token-value")["value"]
    assert raw.startswith("agnes_pat_") and len(raw) > 40
    rows = soup.select("#token-table tbody tr[data-status]")
    assert [r["data-status"] for r in rows] == ["active"]
    with state_store().read() as con:
        stored = con.execute("SELECT token_hash, prefix FROM personal_access_tokens").fetchall()
    assert stored[0][0] == tokens.hash_token(raw) and raw not in stored[0]
    # Shown once: the profile page no longer carries it.
    assert BeautifulSoup(client.get("/me").data, "html.parser").select_one("#new-token-value") is None
    assert client.get("/api/me", headers=bearer(raw)).get_json()["user"]["email"] == "analyst@example.com"


def test_create_token_fragment_and_validation(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("analyst@example.com")
    token = csrf_token(client, "/me")
    fragment = client.post("/me/tokens", data={"name": "", "csrf_token": token}, headers={"HX-Request": "true"})
    assert fragment.status_code == 422
    soup = BeautifulSoup(fragment.data, "html.parser")
    assert soup.find("html") is None and soup.select_one("section#tokens") is not None
    assert soup.select_one("#f-name-error") is not None
    bad_expiry = client.post("/me/tokens", data={"name": "x", "expires_days": "99999", "csrf_token": token})
    assert bad_expiry.status_code == 422


def test_profile_page_and_fragment(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("analyst@example.com")
    page = BeautifulSoup(client.get("/me").data, "html.parser")
    assert page.find("html") is not None and page.select_one("#tokens") is not None
    assert [li.text for li in page.select("#my-groups li")] == ["Everyone"]
    fragment = BeautifulSoup(client.get("/me", headers={"HX-Request": "true"}).data, "html.parser")
    assert fragment.find("html") is None and fragment.select_one("section#tokens") is not None
    boosted = client.get("/me", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert BeautifulSoup(boosted.data, "html.parser").find("html") is not None
    assert "HX-Request" in client.get("/me").headers.get("Vary", "")


def test_api_lifecycle_and_pat_cannot_mint_pat(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("analyst@example.com")
    created = client.post(
        "/api/tokens", json={"name": "ci", "expires_days": 7}, headers={"X-CSRFToken": csrf_token(client, "/me")}
    )
    assert created.status_code == 201
    body = created.get_json()
    raw = body["token"]
    assert body["status"] == "active" and body["expires_at"]
    auth.logout()
    minted = client.post("/api/tokens", json={"name": "nope"}, headers=bearer(raw))
    assert minted.status_code == 403 and minted.get_json()["error"] == "session_required"
    listed = client.get("/api/tokens", headers=bearer(raw)).get_json()["tokens"]
    assert [t["name"] for t in listed] == ["ci"] and "token" not in listed[0]
    assert client.delete(f"/api/tokens/{body['id']}", headers=bearer(raw)).get_json()["status"] == "revoked"
    after = client.get("/api/me", headers=bearer(raw))
    assert after.status_code == 401 and after.get_json() == {
        "error": "invalid_token",
        "message": "Access token revoked.",
    }


def test_expired_and_unknown_tokens(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    raw = auth.token("analyst@example.com", days=1)
    with state_store().write() as con:
        con.execute("UPDATE personal_access_tokens SET expires_at = ?", [utcnow() - timedelta(minutes=1)])
    expired = client.get("/api/me", headers=bearer(raw))
    assert expired.status_code == 401 and expired.get_json()["message"] == "Access token expired."
    unknown = client.get("/api/me", headers=bearer("agnes_pat_nope"))
    assert unknown.status_code == 401 and unknown.get_json()["message"] == "Access token unknown."


def test_token_of_deactivated_user_stops_working(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes.models import users

    raw = auth.token("leaver@example.com")
    with state_store().write() as con:
        users.set_user_active(con, users.get_user_by_email(con, "leaver@example.com").id, False)
    assert client.get("/api/me", headers=bearer(raw)).get_json()["message"] == "Account deactivated."


def test_last_used_and_new_ip_audit(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    raw = auth.token("analyst@example.com")
    client.get("/api/me", headers=bearer(raw), environ_base={"REMOTE_ADDR": "10.0.0.1"})
    with state_store().read() as con:
        token = tokens.lookup_token(con, raw)
    assert token.last_used_ip == "10.0.0.1" and token.last_used_at is not None
    client.get("/api/me", headers=bearer(raw), environ_base={"REMOTE_ADDR": "10.0.0.2"})
    with state_store().read() as con:
        token = tokens.lookup_token(con, raw)
        audited = con.execute("SELECT count(*) FROM audit_log WHERE action = 'token.first_use_new_ip'").fetchone()
    assert token.last_used_ip == "10.0.0.2" and audited == (1,)


def test_pat_works_on_html_pages(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    raw = auth.token("admin@example.com")
    response = client.get("/admin/groups", headers=bearer(raw))
    assert response.status_code == 200
    assert BeautifulSoup(response.data, "html.parser").select_one("#groups-table") is not None


def test_admin_lists_and_revokes_any_token(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    analyst = auth.token("analyst@example.com")
    auth.login("admin@example.com")
    page = BeautifulSoup(client.get("/admin/tokens").data, "html.parser")
    rows = page.select("#admin-token-table tbody tr[data-status]")
    assert len(rows) == 1 and rows[0].td.text == "analyst@example.com"
    token_id = rows[0]["id"].removeprefix("admin-token-")
    response = client.post(
        f"/admin/tokens/{token_id}/revoke",
        data={"csrf_token": csrf_token(client, "/admin/tokens")},
        headers={"HX-Request": "true"},
    )
    fragment = BeautifulSoup(response.data, "html.parser")
    assert fragment.find("html") is None
    assert fragment.select_one(f"#admin-token-{token_id}")["data-status"] == "revoked"
    assert client.get("/api/me", headers=bearer(analyst)).status_code == 401


def test_analyst_cannot_revoke_someone_elses_token(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    other = auth.token("other@example.com")
    with state_store().read() as con:
        token_id = tokens.lookup_token(con, other).id
    mine = auth.token("analyst@example.com")
    response = client.delete(f"/api/tokens/{token_id}", headers=bearer(mine))
    assert response.status_code == 404
    assert client.get("/api/me", headers=bearer(other)).status_code == 200


def test_create_token_command_prints_only_the_token(app: Flask, client: FlaskClient) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-token", "admin@example.com", "--name", "ci", "--expires-days", "5"])
    assert result.exit_code == 0, result.output
    raw = result.output.strip()
    assert raw.startswith("agnes_pat_") and "\n" not in raw
    assert client.get("/api/me", headers=bearer(raw)).get_json()["is_admin"] is True
    missing = runner.invoke(args=["create-token", "ghost@example.com", "--name", "x"])
    assert missing.exit_code != 0 and "No user" in missing.output
    assert isinstance(runner, CliRunner)


def test_cached_callers_see_access_changes_on_the_next_request(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    """Resolved callers are cached per process, but revocation, deactivation and membership
    changes (made here by another 'process': the models plus the signals) apply at once."""
    from agnes import people

    admin = bearer(auth.token("admin@example.com"))
    raw = auth.token("ana@example.com")
    assert client.get("/api/me", headers=bearer(raw)).get_json()["is_admin"] is False
    assert client.get("/api/me", headers=bearer(raw)).status_code == 200  # now served from the cache
    client.post("/api/admin/groups/admin/members", json={"email": "ana@example.com"}, headers=admin)
    assert client.get("/api/me", headers=bearer(raw)).get_json()["is_admin"] is True
    user_id = client.get("/api/me", headers=bearer(raw)).get_json()["user"]["id"]
    people.set_user_active(user_id, False, actor_id="someone-else")
    assert client.get("/api/me", headers=bearer(raw)).get_json()["message"] == "Account deactivated."
    people.set_user_active(user_id, True, actor_id="someone-else")
    token_id = client.get("/api/tokens", headers=bearer(raw)).get_json()["tokens"][0]["id"]
    client.delete(f"/api/admin/tokens/{token_id}", headers=admin)
    assert client.get("/api/me", headers=bearer(raw)).get_json()["message"] == "Access token revoked."


def test_access_marker_is_replaced_after_commit(app: Flask) -> None:
    from agnes import markers
    from agnes.people import create_group

    before = markers.ACCESS.current()
    create_group("No membership change", actor_id=None)  # not an access change: marker stays
    assert markers.ACCESS.current() == before
    from agnes import people

    people.create_user("m@example.com")
    people.add_member("admin", "m@example.com", actor_id=None)
    assert markers.ACCESS.current() != before


def test_marketplace_fast_path_still_sees_a_token_used_from_a_new_ip(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    """Repeated /marketplace.zip requests skip Flask, but only for the same token *and* client IP,
    so a token's first use from a new address is still recorded and audited."""
    raw = auth.token("analyst@example.com")
    for ip in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.9"):  # the first fills the caches
        response = client.get("/marketplace.zip", headers=bearer(raw), environ_base={"REMOTE_ADDR": ip})
        assert response.status_code == 200
        response.close()  # the fast path streams the cached file; closing releases it
    with state_store().read() as con:
        token = tokens.lookup_token(con, raw)
        audited = con.execute("SELECT count(*) FROM audit_log WHERE action = 'token.first_use_new_ip'").fetchone()
    assert token.last_used_ip == "10.0.0.9" and audited == (1,)


# -- caches: a revoke that commits while another thread of the process reads ------------------------


def test_a_token_revoked_during_a_concurrent_request_is_not_trusted_afterwards(app, client, auth):
    """Threads of one process share a write unit's attachment: a request that runs while the
    revoking unit is open reads the new change marker but the token row from before the commit.
    It must not leave the token trusted by the ZIP fast path once the revoke has committed."""
    from agnes import signals

    def zip_status() -> int:
        with client.get("/marketplace.zip", headers=bearer(raw)) as response:
            return response.status_code

    raw = auth.token("ana@example.com")
    assert zip_status() == 200
    with state_store().read() as con:
        token = tokens.lookup_token(con, raw)
    with state_store().write() as con:  # what revoke_pat does; a request runs before it commits
        tokens.revoke_token(con, token.id)
        signals.credentials_changed.send(None, con=con, user_id=token.user_id)
        assert zip_status() == 200  # not committed yet
    assert zip_status() == 401
