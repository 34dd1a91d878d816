"""Sign-in fixtures: a small OAuth2 / OpenID provider on loopback standing in for Google
(``provider``, with :func:`google_settings`, :func:`identity` and :func:`sign_in`), used by the
sign-in tests and by every test that creates a user through Google sign-in.

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
from urllib.parse import urlencode, urlsplit

import pytest
import requests
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


def google_settings(provider: FakeGoogle) -> dict[str, object]:
    """App settings that point Google sign-in at ``provider``."""
    return {
        "GOOGLE_CLIENT_ID": CLIENT_ID,
        "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "AGNES_GOOGLE_DOMAINS": "example.com, corp.example",
        "AGNES_GOOGLE_AUTHORIZE_URL": f"{provider.url}/authorize",
        "AGNES_GOOGLE_TOKEN_URL": f"{provider.url}/token",
        "AGNES_GOOGLE_USERINFO_URL": f"{provider.url}/userinfo",
    }


# -- a Google Workspace directory on loopback (Admin SDK Directory API, service-account tokens) --


GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


@dataclass
class FakeDirectory:
    """The Directory API's group reads and Google's service-account token endpoint.

    ``groups`` maps a group email to ``(name, {member emails})``. ``fail`` makes every directory
    read answer 500; ``delay`` (seconds) slows each one. The token endpoint checks the JWT the
    service account signed (issuer, audience, subject, scope) with its public key.
    """

    groups: dict[str, tuple[str, set[str]]] = field(default_factory=dict)
    fail: bool = False
    delay: float = 0.0
    public_pem: bytes = b""
    key_json: str = ""
    subject: str = "root@corp.example"
    tokens: set[str] = field(default_factory=set)
    reads: int = 0
    url: str = ""

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/token":
            response = self.token(request)
        elif request.path.startswith("/directory/"):
            response = self.read(request)
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    def token(self, request: Request) -> Response:
        from google.auth import jwt

        if request.form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return _json({"error": "unsupported_grant_type"}, 400)
        try:
            # google-auth signs for Google's token audience whatever ``token_uri`` says, as Google expects.
            claims = jwt.decode(request.form["assertion"], certs=self.public_pem, audience=GOOGLE_TOKEN_AUDIENCE)
        except (ValueError, KeyError):
            return _json({"error": "invalid_grant"}, 400)
        if claims.get("sub") != self.subject or "admin.directory.group.readonly" not in claims.get("scope", ""):
            return _json({"error": "unauthorized_client"}, 401)
        access = secrets.token_urlsafe(16)
        self.tokens.add(access)
        return _json({"access_token": access, "token_type": "Bearer", "expires_in": 3600})

    def read(self, request: Request) -> Response:
        import time

        self.reads += 1
        if self.delay:
            time.sleep(self.delay)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return _json({"error": {"code": 401}}, 401)
        if self.fail:
            return _json({"error": {"code": 500, "message": "backend error"}}, 500)
        path = request.path.removeprefix("/directory")
        if path == "/groups":
            user = request.args.get("userKey")
            found = [(e, n) for e, (n, members) in sorted(self.groups.items()) if user is None or user in members]
            return _json({"groups": [{"email": e, "name": n, "id": e} for e, n in found]})
        if path.startswith("/groups/") and path.endswith("/members"):
            email = path.removeprefix("/groups/").removesuffix("/members")
            _, members = self.groups.get(email, ("", set()))
            return _json({"members": [{"email": m, "type": "USER", "status": "ACTIVE"} for m in sorted(members)]})
        return _json({"error": {"code": 404}}, 404)

    def settings(self) -> dict[str, object]:
        """App settings that point Workspace group sync here (the key goes to the overlay)."""
        return {
            "AGNES_GOOGLE_GROUPS": True,
            "AGNES_GOOGLE_DIRECTORY_URL": f"{self.url}/directory",
            "AGNES_GOOGLE_DIRECTORY_SUBJECT": self.subject,
            "AGNES_GOOGLE_GROUP_PREFIX": "agnes-",
            "AGNES_GOOGLE_ADMIN_GROUP": "agnes-admins@corp.example",
        }


@pytest.fixture(scope="module")
def directory() -> Iterator[FakeDirectory]:
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake = FakeDirectory(
        public_pem=key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    server = make_server("127.0.0.1", 0, fake.wsgi, threaded=True)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fake.key_json = json.dumps(
        {
            "type": "service_account",
            "project_id": "agnes-test",
            "private_key_id": "k1",
            "private_key": private.decode(),
            "client_email": "agnes-sync@agnes-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{fake.url}/token",
        }
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    thread.join(10)


def install_key(directory: FakeDirectory) -> None:
    """Put the service account's key where an operator would: the secrets overlay."""
    from agnes.secrets import write_secret

    write_secret("AGNES_GOOGLE_SERVICE_ACCOUNT_KEY", directory.key_json)
