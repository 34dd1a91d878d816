"""Google sign-in (Flask-Dance) against a small OAuth2 / OpenID provider on loopback.

The provider is a real HTTP server (werkzeug, in a thread) with the three endpoints Agnes
uses: ``/authorize`` redirects straight back with a code and the state, ``/token`` swaps the
code for an access token (checking client id, secret and redirect URI), ``/userinfo`` answers
the identity the test chose. The browser side is the Flask test client; the hop to the
provider's authorize endpoint is a real ``requests`` call, so both servers are exercised.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CLIENT_ID = "agnes-test-client"
CLIENT_SECRET = "agnes-test-secret"


@dataclass
class FakeGoogle:
    """A minimal authorization-code provider. Set ``identity`` before each sign-in."""

    identity: dict[str, Any] = field(default_factory=dict)
    deny: bool = False  # the user presses "Cancel" on the consent screen
    codes: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)  # code -> (identity, redirect_uri)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)  # access token -> identity
    token_requests: int = 0
    url: str = ""

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        handler = {
            "/authorize": self.authorize,
            "/token": self.token,
            "/userinfo": self.userinfo,
        }.get(request.path)
        response = handler(request) if handler else Response("not found", status=404)
        return response(environ, start_response)

    def authorize(self, request: Request) -> Response:
        args = request.args
        if args.get("client_id") != CLIENT_ID or args.get("response_type") != "code":
            return Response("bad authorization request", status=400)
        if self.deny:
            query = urlencode({"error": "access_denied", "state": args.get("state", "")})
            return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{query}"})
        code = secrets.token_urlsafe(16)
        self.codes[code] = (dict(self.identity), args["redirect_uri"])
        query = urlencode({"code": code, "state": args.get("state", "")})
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{query}"})

    def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = request.form
        auth = request.authorization
        client_id = auth.username if auth else form.get("client_id")
        client_secret = auth.password if auth else form.get("client_secret")
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return _json({"error": "invalid_client"}, 401)
        entry = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or entry is None:
            return _json({"error": "invalid_grant"}, 400)
        identity, redirect_uri = entry
        if form.get("redirect_uri") != redirect_uri:
            return _json({"error": "invalid_grant", "error_description": "redirect_uri mismatch"}, 400)
        access = secrets.token_urlsafe(24)
        self.tokens[access] = identity
        return _json(
            {"access_token": access, "token_type": "Bearer", "expires_in": 3600, "scope": "openid email profile"}
        )

    def userinfo(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        identity = self.tokens.get(header.removeprefix("Bearer ").strip())
        if identity is None:
            return _json({"error": "invalid_token"}, 401)
        return _json(identity)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    import json

    return Response(json.dumps(body), status=status, mimetype="application/json")


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    server = make_server("127.0.0.1", 0, fake.wsgi, threaded=True)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    thread.join(10)


@pytest.fixture
def app_config(
    app_config: dict[str, object], provider: FakeGoogle, monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    # oauthlib refuses plain-http token endpoints unless told this is a test.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    provider.identity = {}
    provider.deny = False
    return {
        **app_config,
        "GOOGLE_CLIENT_ID": CLIENT_ID,
        "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "AGNES_GOOGLE_DOMAINS": "example.com, corp.example",
        "AGNES_GOOGLE_AUTHORIZE_URL": f"{provider.url}/authorize",
        "AGNES_GOOGLE_TOKEN_URL": f"{provider.url}/token",
        "AGNES_GOOGLE_USERINFO_URL": f"{provider.url}/userinfo",
    }


def identity(email: str, *, verified: bool = True, name: str = "Grace Hopper") -> dict[str, Any]:
    return {"sub": secrets.token_hex(8), "email": email, "email_verified": verified, "name": name}


def sign_in(client: FlaskClient, provider: FakeGoogle, next_path: str | None = "/me") -> str:
    """Run the whole dance; returns the Location of Agnes's final redirect (path or URL)."""
    start = "/auth/google/start" + (f"?{urlencode({'next': next_path})}" if next_path is not None else "")
    resp = client.get(start)
    assert resp.status_code == 302, resp.data
    resp = client.get(resp.location)  # /auth/google → provider
    assert resp.status_code == 302
    assert resp.location.startswith(provider.url + "/authorize"), resp.location
    authorize = requests.get(resp.location, allow_redirects=False, timeout=10)
    assert authorize.status_code == 302, authorize.text
    back = urlsplit(authorize.headers["Location"])
    assert back.path == "/auth/google/authorized"
    resp = client.get(f"{back.path}?{back.query}")
    assert resp.status_code == 302, resp.data
    return resp.location


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
