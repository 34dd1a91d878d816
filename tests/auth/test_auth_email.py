"""Email sign-in links, sessions, sign-out and CSRF."""

from __future__ import annotations

import logging
import re
import time

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient

from agnes.models import audit as audit_model
from agnes.state import state_store
from agnes.urls import safe_next_path
from tests.conftest import Auth, csrf_token


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Links the server would have emailed, as (address, link)."""
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr("agnes.auth.email.deliver_sign_in_link", lambda to, link: sent.append((to, link)))
    return sent


def request_link(client: FlaskClient, email: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "csrf_token": token})


def link_path(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def sign_in_with(client: FlaskClient, link: str):  # type: ignore[no-untyped-def]
    page = client.get(link_path(link))
    assert page.status_code == 200
    form = BeautifulSoup(page.data, "html.parser").select_one("#confirm-sign-in form")
    assert form is not None
    token = form.find("input", {"name": "csrf_token"})["value"]
    return client.post(form["action"], data={"csrf_token": token})


def test_known_address_gets_a_link_that_signs_in_once(client: FlaskClient, outbox) -> None:  # type: ignore[no-untyped-def]
    response = request_link(client, "Admin@Example.com ")
    assert response.status_code == 303 and response.headers["Location"] == "/login/sent"
    assert len(outbox) == 1 and outbox[0][0] == "admin@example.com"
    signed_in = sign_in_with(client, outbox[0][1])
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    soup = BeautifulSoup(home.data, "html.parser")
    assert soup.select_one("#admin-nav") is not None  # the seed admin sees admin links
    # Reuse: a second sign-in with the same link is refused.
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    again = client.get(link_path(outbox[0][1]))
    assert again.status_code == 302 and "error=link_invalid" in again.headers["Location"]


def test_unknown_address_gets_the_same_answer_and_no_email(client: FlaskClient, outbox) -> None:  # type: ignore[no-untyped-def]
    known = request_link(client, "admin@example.com")
    unknown = request_link(client, "nobody@example.com")
    assert (known.status_code, known.headers["Location"]) == (unknown.status_code, unknown.headers["Location"])
    assert [to for to, _ in outbox] == ["admin@example.com"]


def test_invalid_address_rerenders_form_with_422(client: FlaskClient, outbox) -> None:  # type: ignore[no-untyped-def]
    response = request_link(client, "not-an-email")
    assert response.status_code == 422
    soup = BeautifulSoup(response.data, "html.parser")
    assert soup.select_one("#f-email")["value"] == "not-an-email"
    assert "valid email" in soup.select_one("#f-email-error").text
    assert outbox == []


def test_expired_link_is_refused(app: Flask, client: FlaskClient, outbox) -> None:  # type: ignore[no-untyped-def]
    request_link(client, "admin@example.com")
    app.config["AGNES_MAGIC_LINK_TTL"] = 1
    time.sleep(2.1)
    response = client.get(link_path(outbox[0][1]))
    assert response.status_code == 302 and "error=link_invalid" in response.headers["Location"]
    post = client.post(link_path(outbox[0][1]), data={"csrf_token": csrf_token(client, "/login")})
    assert post.status_code == 303 and "error=link_invalid" in post.headers["Location"]
    assert client.get("/").status_code == 302  # still anonymous


def test_tampered_link_is_refused(client: FlaskClient, outbox) -> None:  # type: ignore[no-untyped-def]
    request_link(client, "admin@example.com")
    path = link_path(outbox[0][1])
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert "error=link_invalid" in client.get(tampered).headers["Location"]


def test_deactivated_user_cannot_use_link(app: Flask, client: FlaskClient, outbox, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes.models import users

    user_id = auth.user("leaver@example.com")
    request_link(client, "leaver@example.com")
    with state_store().write() as con:
        users.set_user_active(con, user_id, False)
    response = sign_in_with(client, outbox[0][1]) if client.get(link_path(outbox[0][1])).status_code == 200 else None
    assert response is None or "error=link_invalid" in response.headers["Location"]
    assert client.get("/").status_code == 302


def test_link_is_logged_when_no_smtp(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agnes.auth.email"):
        request_link(client, "admin@example.com")
    lines = [r.getMessage() for r in caplog.records if "SIGN-IN LINK" in r.getMessage()]
    assert len(lines) == 1
    assert re.search(r"http://localhost/auth/link/\S+", lines[0])


def test_post_without_csrf_token_is_rejected(client: FlaskClient, outbox) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/login", data={"email": "admin@example.com"})
    assert response.status_code == 400
    assert BeautifulSoup(response.data, "html.parser").select_one(".error-message")["data-code"] == "csrf_failed"
    assert outbox == []
    api = client.post("/api/admin/groups", json={"name": "x"})  # no credentials at all: 401, not "form expired"
    assert api.status_code == 401 and api.get_json()["error"] == "authentication_required"


def test_anonymous_post_to_a_page_redirects_to_login_with_the_referring_page(client: FlaskClient) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        "/admin/groups", data={"name": "x", "csrf_token": token}, headers={"Referer": "http://localhost/admin/groups"}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/login?next=/admin/groups"


def test_logged_in_csrf_rejection_changes_nothing(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin@example.com")
    response = client.post("/admin/groups", data={"name": "Sneaky"})
    assert response.status_code == 400
    groups_page = BeautifulSoup(client.get("/admin/groups").data, "html.parser")
    assert "Sneaky" not in [a.text for a in groups_page.select("#groups-table a")]


def test_html_pages_redirect_to_login_with_next(client: FlaskClient) -> None:
    response = client.get("/admin/groups?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/groups?x%3D1"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/groups", "/admin/groups"),
        ("/me?tab=tokens", "/me?tab=tokens"),
        ("//evil.example", "/"),
        ("https://evil.example/x", "/"),
        ("javascript:alert(1)", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
        ("/ok\r\nSet-Cookie: x", "/"),
    ],
)
def test_safe_next_path(target: str | None, expected: str) -> None:
    assert safe_next_path(target) == expected


def test_sign_out_ends_the_session(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("analyst@example.com")
    assert client.get("/").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 303
    assert client.get("/").status_code == 302


def test_a_cookie_captured_before_sign_out_no_longer_works(app, client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    """Issue 10 item 7: before server-side sessions the copy kept working for 336 hours."""
    auth.login("analyst@example.com")
    with client.session_transaction() as sess:
        captured = dict(sess)
    assert client.get("/me").status_code == 200  # cached as a resolved caller in this process
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/")}).status_code == 303
    thief = app.test_client()
    with thief.session_transaction() as sess:
        sess.update(captured)
    assert thief.get("/me").status_code == 302
    assert thief.get("/api/me").status_code == 401
    with state_store().read() as con:
        rows = [e for e in audit_model.list_audit(con, action_prefix="auth.sign_out")]
    assert rows and rows[0].params.get("scope") == "this_session"


def test_deactivation_and_sign_out_everywhere_end_every_session(app, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes import people

    laptop, phone = app.test_client(), app.test_client()
    for browser in (laptop, phone):
        Auth(app, browser).login("analyst@example.com")
        assert browser.get("/me").status_code == 200
    response = laptop.post("/me/sessions/revoke", data={"csrf_token": csrf_token(laptop, "/me")})
    assert response.status_code == 303 and response.location.endswith("/login")
    assert laptop.get("/me").status_code == 302 and phone.get("/me").status_code == 302
    # A token is not a browser session: "sign out everywhere" leaves it working.
    token = auth.token("analyst@example.com")
    assert app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    user_id = Auth(app, phone).login("analyst@example.com")
    assert phone.get("/me").status_code == 200
    admin = people.ensure_seed_admin("admin@example.com")
    people.set_user_active(user_id, False, actor_id=admin.id)
    people.set_user_active(user_id, True, actor_id=admin.id)
    assert phone.get("/me").status_code == 302  # reactivation does not revive the old session


def test_a_cookie_without_a_server_side_session_is_signed_out(app, client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    user_id = auth.user("analyst@example.com")
    with client.session_transaction() as sess:
        sess["uid"] = user_id  # what a cookie signed with the secret key held before
    assert client.get("/me").status_code == 302


def test_session_cookie_flags(app_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agnes import create_app

    secure = create_app({**app_config, "AGNES_BASE_URL": "https://agnes.example.com"})
    client = secure.test_client()
    response = client.get("/login")
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_sign_in_is_audited(client: FlaskClient, outbox) -> None:  # type: ignore[no-untyped-def]
    request_link(client, "admin@example.com")
    sign_in_with(client, outbox[0][1])
    with state_store().read() as con:
        actions = [e.action for e in audit_model.list_audit(con, action_prefix="auth.")]
    assert "auth.link_requested" in actions and "auth.sign_in" in actions


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    soup = BeautifulSoup(response.data, "html.parser")
    assert all(s.get("src") for s in soup.find_all("script")), "inline scripts would break the CSP"
    assert soup.find("script", src=re.compile(r"htmx-2\.0\.\d+\.min\.js"))


# -- audit: a sign-in link refused before its view ran must not be stored in the audit log -----------


def test_sign_in_link_refused_by_csrf_is_not_written_to_the_audit_log(app, client, monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr("agnes.auth.email.deliver_sign_in_link", lambda to, link: sent.append(link))

    client.post("/login", data={"email": "admin@example.com", "csrf_token": csrf_token(client, "/login")})
    path = "/" + sent[0].split("/", 3)[3]
    secret = path.rsplit("/", 1)[1]
    refused = client.post(path, data={})  # no CSRF token: refused before the view consumes the link
    assert refused.status_code == 400
    with state_store().read() as con:
        rows = con.execute("SELECT resource, CAST(params AS VARCHAR) FROM audit_log").fetchall()
    assert rows and not any(secret in (resource or "") or secret in (params or "") for resource, params in rows)
