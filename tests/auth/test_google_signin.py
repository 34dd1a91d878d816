"""Google sign-in (Flask-Dance) against the small OAuth2 / OpenID provider of ``conftest.py``."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from tests.auth.conftest import FakeGoogle, google_settings, identity, sign_in


@pytest.fixture
def app_config(
    app_config: dict[str, object], provider: FakeGoogle, monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    # oauthlib refuses plain-http token endpoints unless told this is a test.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    provider.identity = {}
    provider.deny = False
    return {**app_config, **google_settings(provider)}


def error_of(location: str) -> str | None:
    parts = urlsplit(location)
    assert parts.path == "/login", location
    return parse_qs(parts.query).get("error", [None])[0]


def user_by_email(email: str):  # type: ignore[no-untyped-def]
    from agnes.models import users
    from agnes.state import state_store

    with state_store().read() as con:
        return users.get_user_by_email(con, email)


def count_users() -> int:
    from agnes.state import state_store

    with state_store().read() as con:
        return con.execute("SELECT count(*) FROM users").fetchone()[0]


def whoami(client: FlaskClient) -> str | None:
    resp = client.get("/api/me")
    return resp.get_json()["user"]["email"] if resp.status_code == 200 else None


def test_first_sign_in_creates_user_and_lands_on_next(app: Flask, client: FlaskClient, provider: FakeGoogle) -> None:
    assert user_by_email("grace@example.com") is None
    provider.identity = identity("Grace@Example.com")

    location = sign_in(client, provider, next_path="/me?tab=tokens")

    assert location == "/me?tab=tokens"
    user = user_by_email("grace@example.com")
    assert user is not None and user.name == "Grace Hopper" and user.active
    assert whoami(client) == "grace@example.com"
    # Agnes keeps no OAuth token in the session once the user is signed in.
    with client.session_transaction() as sess:
        assert not any("token" in key for key in sess), dict(sess)
    from agnes.models import groups
    from agnes.state import state_store

    with state_store().read() as con:
        assert "everyone" in groups.list_user_group_ids(con, user.id)


def test_second_sign_in_reuses_user(app: Flask, client: FlaskClient, provider: FakeGoogle) -> None:
    provider.identity = identity("ada@corp.example", name="Ada")
    sign_in(client, provider)
    first = user_by_email("ada@corp.example")
    before = count_users()

    other = app.test_client()
    provider.identity = identity("ada@corp.example", name="Ada Lovelace")
    location = sign_in(other, provider, next_path=None)

    assert location == "/"
    assert count_users() == before
    assert user_by_email("ada@corp.example").id == first.id
    assert whoami(other) == "ada@corp.example"


def test_domain_not_allowed_is_refused(app: Flask, client: FlaskClient, provider: FakeGoogle) -> None:
    before = count_users()
    provider.identity = identity("mallory@evil.example")

    location = sign_in(client, provider)

    assert error_of(location) == "domain_not_allowed"
    assert user_by_email("mallory@evil.example") is None
    assert count_users() == before
    assert whoami(client) is None
    # The login page explains the refusal.
    from bs4 import BeautifulSoup

    page = BeautifulSoup(client.get(location).data, "html.parser")
    assert page.find(id="login-error") is not None or "domain" in page.get_text().lower()


def test_unverified_email_is_refused(app: Flask, client: FlaskClient, provider: FakeGoogle) -> None:
    provider.identity = identity("eve@example.com", verified=False)

    location = sign_in(client, provider)

    assert error_of(location) == "email_not_verified"
    assert user_by_email("eve@example.com") is None
    assert whoami(client) is None


def test_deactivated_user_is_refused(app: Flask, client: FlaskClient, provider: FakeGoogle, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes import people

    admin_id = auth.user("admin@example.com")
    user_id = auth.user("gone@example.com")
    people.set_user_active(user_id, False, actor_id=admin_id)
    provider.identity = identity("gone@example.com")

    location = sign_in(client, provider)

    assert error_of(location) == "deactivated"
    assert whoami(client) is None


def test_not_configured(app_config: dict[str, object], provider: FakeGoogle) -> None:
    from agnes import create_app

    application = create_app({**app_config, "GOOGLE_CLIENT_ID": "", "GOOGLE_CLIENT_SECRET": ""})
    client = application.test_client()
    requests_before = provider.token_requests

    resp = client.get("/auth/google/start?next=/me")

    assert resp.status_code == 302
    assert error_of(resp.location) == "google_not_configured"
    assert provider.token_requests == requests_before
    # Flask-Dance's own entry point does not send visitors off with client_id=None either.
    resp = client.get("/auth/google")
    assert resp.status_code == 302
    assert error_of(resp.location) == "google_not_configured"
    # The login page does not offer the Google button.
    from bs4 import BeautifulSoup

    page = BeautifulSoup(client.get("/login").data, "html.parser")
    assert not page.find("a", href=lambda h: bool(h) and "/auth/google" in h)


@pytest.mark.parametrize(
    "evil",
    ["//evil.com", "https://evil.com/x", "javascript:alert(1)", "/\\evil.com", "http:/evil.com", " //evil.com"],
)
def test_open_redirect_next_is_ignored(app: Flask, client: FlaskClient, provider: FakeGoogle, evil: str) -> None:
    provider.identity = identity("redirect@example.com")

    location = sign_in(client, provider, next_path=evil)

    assert location == "/"
    assert whoami(client) == "redirect@example.com"


def test_state_mismatch_does_not_sign_in(app: Flask, client: FlaskClient, provider: FakeGoogle) -> None:
    """A callback carrying someone else's state (login CSRF) must not create a session."""
    provider.identity = identity("victim@example.com")
    resp = client.get(client.get("/auth/google/start").location)
    authorize = requests.get(resp.location, allow_redirects=False, timeout=10)
    back = urlsplit(authorize.headers["Location"])
    query = parse_qs(back.query)

    forged = f"{back.path}?{urlencode({'code': query['code'][0], 'state': 'not-the-state'})}"
    resp = client.get(forged)

    assert whoami(client) is None
    assert user_by_email("victim@example.com") is None
    assert resp.status_code == 302
    assert error_of(resp.location) == "oauth_failed"


def test_cancelled_at_provider_explains(app: Flask, client: FlaskClient, provider: FakeGoogle) -> None:
    provider.identity = identity("shy@example.com")
    provider.deny = True

    location = sign_in(client, provider)

    assert error_of(location) == "oauth_failed"
    assert user_by_email("shy@example.com") is None


def test_token_endpoint_refusal_explains(app_config: dict[str, object], provider: FakeGoogle) -> None:
    """A wrong client secret makes the token endpoint answer 401: no 500, no session."""
    from agnes import create_app

    application = create_app({**app_config, "GOOGLE_CLIENT_SECRET": "wrong"})
    client = application.test_client()
    provider.identity = identity("secret@example.com")
    with application.app_context():
        location = sign_in(client, provider)
        assert error_of(location) == "oauth_failed"
        assert whoami(client) is None
        assert user_by_email("secret@example.com") is None
